// Internal: the body of the split-KV decode kernel (decode_split_kv.cuh describes it).
// Included only by the decode_<source>_d<D>.cu files that instantiate one variant each.
#ifndef SF_KERNELS_CUDA_ATTENTION_DECODE_SPLIT_KV_IMPL_CUH_
#define SF_KERNELS_CUDA_ATTENTION_DECODE_SPLIT_KV_IMPL_CUH_

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "kernels/cuda/attention/decode_split_kv.cuh"
#include "kernels/cuda/attention/pdl.cuh"

namespace sf::cuda::decode_internal {

// ld.global.nc with no L1 allocation: every K/V byte is read once.
__device__ __forceinline__ uint4 LoadStreaming(const void* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

// mma.sync.m16n8k16 bf16 x bf16 + f32 (row.col): d += a * b.
__device__ __forceinline__ void Mma16816(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                         uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

__device__ __forceinline__ uint32_t LoadPair(const __nv_bfloat16* p) {
  return static_cast<uint32_t>(__bfloat16_as_ushort(p[0])) |
         (static_cast<uint32_t>(__bfloat16_as_ushort(p[1])) << 16);
}

// One warp's view of a tile of 16 selected rows: thread (r = lane / 4, c = lane % 4)
// holds K of rows t0 + r and t0 + 8 + r, dims 8 (4 i + c) .. + 8 for i < D / 32, and V of
// rows t0 + {2c, 2c + 1, 2c + 8, 2c + 9}, dims (D / 8) r .. + D / 8. `valid` bit j says
// whether V row j (= score column j of this thread) exists.
template <int D>
struct Tile {
  static constexpr int kK = D / 32;  // 16-byte K loads per row and thread
  static constexpr int kV = D / 64;  // 16-byte V loads per row and thread (D >= 64)
  uint4 k[2 * kK];
  uint4 v[4 * kV];
  uint32_t valid;
};

template <int D, class Bound>
__device__ __forceinline__ void LoadTile(Tile<D>& t, const Bound& rows, int64_t t0, int64_t end,
                                         const __nv_bfloat16* kbase, const __nv_bfloat16* vbase,
                                         int64_t row_stride, int r, int c) {
  constexpr int kK = Tile<D>::kK, kV = Tile<D>::kV;
  const uint4 zero = make_uint4(0, 0, 0, 0);
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    const int64_t sel = t0 + 8 * j + r;
    const int64_t row = sel < end ? rows.row(sel) : -1;
    const __nv_bfloat16* p = kbase + row * row_stride;
#pragma unroll
    for (int i = 0; i < kK; ++i)
      t.k[j * kK + i] = row >= 0 ? LoadStreaming(p + 8 * (4 * i + c)) : zero;
  }
  t.valid = 0;
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    const int64_t sel = t0 + 2 * c + (q & 1) + 8 * (q >> 1);
    const int64_t row = sel < end ? rows.row(sel) : -1;
    const __nv_bfloat16* p = vbase + row * row_stride + (D / 8) * r;
    t.valid |= row >= 0 ? (1u << q) : 0u;
#pragma unroll
    for (int w = 0; w < kV; ++w) t.v[q * kV + w] = row >= 0 ? LoadStreaming(p + 8 * w) : zero;
  }
}

__device__ __forceinline__ uint32_t Word(const uint4& x, int i) {
  return i == 0 ? x.x : i == 1 ? x.y : i == 2 ? x.z : x.w;
}

// Running softmax state of one warp: row r of the score tile is query head r; m and l are
// per head (l partial per thread until the end), o holds O^T for heads 2c, 2c + 1.
template <int D>
struct WarpState {
  float m = -INFINITY;
  float l = 0.0f;
  float o[D / 16][4];
};

template <int D>
__device__ __forceinline__ void ComputeTile(WarpState<D>& st, const Tile<D>& t,
                                            const uint32_t (&qa)[D / 16][2], float scale_log2,
                                            int lane) {
  constexpr int kK = Tile<D>::kK, kV = Tile<D>::kV;
  // S = Q K^T over two n-tiles of 8 rows.
  float s[2][4];
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
    for (int kt = 0; kt < D / 16; ++kt) {
      const uint4& kr = t.k[j * kK + kt / 2];
      const uint32_t b0 = (kt & 1) ? kr.z : kr.x;
      const uint32_t b1 = (kt & 1) ? kr.w : kr.y;
      Mma16816(s[j], qa[kt][0], 0u, qa[kt][1], 0u, b0, b1);
    }
  }
  // Columns held: rows t0 + 2c, 2c + 1 (n-tile 0) and 2c + 8, 2c + 9 (n-tile 1).
  float x[4] = {s[0][0], s[0][1], s[1][0], s[1][1]};
  float tile_max = -INFINITY;
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    x[q] = (t.valid >> q) & 1u ? x[q] * scale_log2 : -INFINITY;
    tile_max = fmaxf(tile_max, x[q]);
  }
  tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
  tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
  const float m_new = fmaxf(st.m, tile_max);
  // A head that has seen only skipped rows keeps m = -inf: no rescale, p = 0.
  const float base = m_new == -INFINITY ? 0.0f : m_new;
  const float alpha = exp2f(st.m - base);
  float p[4], psum = 0.0f;
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    p[q] = exp2f(x[q] - base);
    psum += p[q];
  }
  st.l = st.l * alpha + psum;
  st.m = m_new;
  // O^T columns are heads 2c and 2c + 1, whose scales live on lanes 8c and 8c + 4.
  const int c = lane & 3;
  const float alpha_lo = __shfl_sync(0xffffffffu, alpha, 8 * c);
  const float alpha_hi = __shfl_sync(0xffffffffu, alpha, 8 * c + 4);
  const uint32_t b0 = PackBf16(p[0], p[1]);
  const uint32_t b1 = PackBf16(p[2], p[3]);
#pragma unroll
  for (int u = 0; u < D / 16; ++u) {
    st.o[u][0] *= alpha_lo;
    st.o[u][1] *= alpha_hi;
    st.o[u][2] *= alpha_lo;
    st.o[u][3] *= alpha_hi;
    const uint32_t w0 = Word(t.v[0 * kV + u / 4], u % 4), w1 = Word(t.v[1 * kV + u / 4], u % 4);
    const uint32_t w2 = Word(t.v[2 * kV + u / 4], u % 4), w3 = Word(t.v[3 * kV + u / 4], u % 4);
    Mma16816(st.o[u], __byte_perm(w0, w1, 0x5410), __byte_perm(w0, w1, 0x7632),
             __byte_perm(w2, w3, 0x5410), __byte_perm(w2, w3, 0x7632), b0, b1);
  }
}

template <int D>
struct CtaScratch {
  float m[kWarps][kHeadsPerUnit];
  float l[kWarps][kHeadsPerUnit];
  float o[kWarps][kHeadsPerUnit][D];
};

// ---- The shared-memory pipeline (kStages >= 2): each thread copies the 16-byte pieces
// of a tile it will itself read (cp.async, zero-filled for skipped rows) into its own
// slots, kStages - 1 tiles ahead, and reads them back when their group has landed. No
// thread reads another's slots, so cp.async.wait_group is the only synchronisation.
// Layout [stage][piece][thread] of uint4: consecutive threads, consecutive 16 bytes.

__device__ __forceinline__ uint32_t SmemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void CpAsync16(uint4* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(SmemAddr(dst)), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void CpAsyncCommit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int kPending>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

template <int D>
inline constexpr int kPieces = 2 * Tile<D>::kK + 4 * Tile<D>::kV;  // uint4 per thread and tile

template <int D, int kStages>
inline constexpr size_t kPipelineBytes = static_cast<size_t>(kStages) * kPieces<D>* kThreads *
                                             sizeof(uint4) +
                                         static_cast<size_t>(kStages) * kThreads * sizeof(uint32_t);

// Issues the copies of the tile at t0 into `stage`; its valid bits go to valid[stage].
template <int D, class Bound>
__device__ __forceinline__ void IssueTile(uint4* pipe, uint32_t* valid, int stage,
                                          const Bound& rows, int64_t t0, int64_t end,
                                          const __nv_bfloat16* kbase, const __nv_bfloat16* vbase,
                                          int64_t row_stride, int r, int c) {
  constexpr int kK = Tile<D>::kK, kV = Tile<D>::kV;
  uint4* slot = pipe + static_cast<size_t>(stage) * kPieces<D> * kThreads + threadIdx.x;
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    const int64_t sel = t0 + 8 * j + r;
    const int64_t row = sel < end ? rows.row(sel) : -1;
    const __nv_bfloat16* p = row >= 0 ? kbase + row * row_stride : kbase;
#pragma unroll
    for (int i = 0; i < kK; ++i) {
      CpAsync16(slot + (j * kK + i) * kThreads, p + 8 * (4 * i + c), row >= 0);
    }
  }
  uint32_t bits = 0;
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    const int64_t sel = t0 + 2 * c + (q & 1) + 8 * (q >> 1);
    const int64_t row = sel < end ? rows.row(sel) : -1;
    const __nv_bfloat16* p = row >= 0 ? vbase + row * row_stride + (D / 8) * r : vbase;
    bits |= row >= 0 ? (1u << q) : 0u;
#pragma unroll
    for (int w = 0; w < kV; ++w) {
      CpAsync16(slot + (2 * kK + q * kV + w) * kThreads, p + 8 * w, row >= 0);
    }
  }
  valid[stage * kThreads + threadIdx.x] = bits;
}

template <int D>
__device__ __forceinline__ void ReadTile(Tile<D>& t, const uint4* pipe, const uint32_t* valid,
                                         int stage) {
  constexpr int kK = Tile<D>::kK, kV = Tile<D>::kV;
  const uint4* slot = pipe + static_cast<size_t>(stage) * kPieces<D> * kThreads + threadIdx.x;
#pragma unroll
  for (int i = 0; i < 2 * kK; ++i) t.k[i] = slot[i * kThreads];
#pragma unroll
  for (int i = 0; i < 4 * kV; ++i) t.v[i] = slot[(2 * kK + i) * kThreads];
  t.valid = valid[stage * kThreads + threadIdx.x];
}

// Where a CTA's rows and queries are.
struct CtaWork {
  int g, h0, nh, list;
  int64_t begin, end;
  const __nv_bfloat16* kbase;
  const __nv_bfloat16* vbase;
};

// The warp's tiles (w, w + kWarps, ... of [begin, end)) through registers: the next
// tile loads while the current one computes (head dim 256: one buffer).
template <int D, class Bound>
__device__ void MainLoopRegisters(WarpState<D>& st, const uint32_t (&qa)[D / 16][2],
                                  const Bound& rows, const CtaWork& w, const SplitKvArgs& a) {
  constexpr int64_t kStep = kWarps * kTileRows;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 4, c = lane % 4;
  Tile<D> ta;
  int64_t t0 = w.begin + warp * kTileRows;
  if constexpr (D <= 128) {
    Tile<D> tb;
    if (t0 < w.end) LoadTile<D>(ta, rows, t0, w.end, w.kbase, w.vbase, a.kv_row_stride, r, c);
    while (t0 < w.end) {
      int64_t t1 = t0 + kStep;
      if (t1 < w.end) LoadTile<D>(tb, rows, t1, w.end, w.kbase, w.vbase, a.kv_row_stride, r, c);
      ComputeTile<D>(st, ta, qa, a.scale_log2, lane);
      t0 = t1;
      if (t0 >= w.end) break;
      t1 = t0 + kStep;
      if (t1 < w.end) LoadTile<D>(ta, rows, t1, w.end, w.kbase, w.vbase, a.kv_row_stride, r, c);
      ComputeTile<D>(st, tb, qa, a.scale_log2, lane);
      t0 = t1;
    }
  } else {
    for (; t0 < w.end; t0 += kStep) {
      LoadTile<D>(ta, rows, t0, w.end, w.kbase, w.vbase, a.kv_row_stride, r, c);
      ComputeTile<D>(st, ta, qa, a.scale_log2, lane);
    }
  }
}

// The same walk through the shared-memory pipeline, kStages - 1 tiles in flight.
template <int D, int kStages, class Bound>
__device__ void MainLoopPipelined(WarpState<D>& st, const uint32_t (&qa)[D / 16][2],
                                  const Bound& rows, const CtaWork& w, const SplitKvArgs& a,
                                  uint4* pipe, uint32_t* valid) {
  constexpr int64_t kStep = kWarps * kTileRows;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 4, c = lane % 4;
  int64_t next = w.begin + warp * kTileRows;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s, next += kStep) {
    if (next < w.end) {
      IssueTile<D>(pipe, valid, s, rows, next, w.end, w.kbase, w.vbase, a.kv_row_stride, r, c);
    }
    CpAsyncCommit();
  }
  int stage = 0;
  for (int64_t t0 = w.begin + warp * kTileRows; t0 < w.end; t0 += kStep, next += kStep) {
    CpAsyncWait<kStages - 2>();
    Tile<D> t;
    ReadTile<D>(t, pipe, valid, stage);
    const int refill = stage == 0 ? kStages - 1 : stage - 1;
    if (next < w.end) {
      IssueTile<D>(pipe, valid, refill, rows, next, w.end, w.kbase, w.vbase, a.kv_row_stride, r, c);
    }
    CpAsyncCommit();
    ComputeTile<D>(st, t, qa, a.scale_log2, lane);
    stage = stage == kStages - 1 ? 0 : stage + 1;
  }
  CpAsyncWait<0>();
}

// Merges the warps' states through shared memory (`scratch`, which may alias the
// drained pipeline) and writes the CTA's output, or its partial result when split.
template <int D>
__device__ void MergeAndWrite(WarpState<D>& st, const CtaWork& w, const SplitKvArgs& a,
                              CtaScratch<D>& sc) {
  const int split = blockIdx.x, b = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 4, c = lane % 4;
  st.l += __shfl_xor_sync(0xffffffffu, st.l, 1);
  st.l += __shfl_xor_sync(0xffffffffu, st.l, 2);
  __syncthreads();  // every warp is done with the pipeline that `sc` may alias
  if (c == 0) {
    sc.m[warp][r] = st.m;
    sc.l[warp][r] = st.l;
  }
#pragma unroll
  for (int u = 0; u < D / 16; ++u) {
    const int d = (D / 8) * r + 2 * u;
    *reinterpret_cast<float2*>(&sc.o[warp][2 * c][d]) = make_float2(st.o[u][0], st.o[u][2]);
    *reinterpret_cast<float2*>(&sc.o[warp][2 * c + 1][d]) = make_float2(st.o[u][1], st.o[u][3]);
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < w.nh * D; idx += kThreads) {
    const int h = idx / D, d = idx % D;
    float mx = -INFINITY;
#pragma unroll
    for (int k = 0; k < kWarps; ++k) mx = fmaxf(mx, sc.m[k][h]);
    float l = 0.0f, o = 0.0f;
    if (mx != -INFINITY) {
#pragma unroll
      for (int k = 0; k < kWarps; ++k) {
        const float e = exp2f(sc.m[k][h] - mx);
        l += e * sc.l[k][h];
        o += e * sc.o[k][h][d];
      }
    }
    const int hq = w.h0 + h;
    if (a.num_splits == 1) {
      a.out[b * a.out_batch_stride + hq * a.out_head_stride + d] =
          __float2bfloat16_rn(l > 0.0f ? o / l : 0.0f);
      if (d == 0 && a.lse != nullptr) {
        a.lse[b * a.num_q_heads + hq] =
            l > 0.0f ? (mx + log2f(l)) * 0.69314718055994531f : -INFINITY;
      }
    } else {
      const int64_t slot = (static_cast<int64_t>(b) * a.num_q_heads + hq) * a.num_splits + split;
      if (l > 0.0f) a.part_o[slot * D + d] = o;
      if (d == 0) {
        a.part_ml[2 * slot] = mx;
        a.part_ml[2 * slot + 1] = l;
      }
    }
  }
}

// Grid (split, unit, sequence); kStages 0: register double buffer, >= 2: the
// shared-memory pipeline in dynamic shared memory (kPipelineBytes).
template <int D, class Source, int kStages>
__global__ void __launch_bounds__(kThreads) SplitKvKernel(const SplitKvArgs a, const Source src) {
  pdl_internal::PdlEnter();
  const int split = blockIdx.x, unit = blockIdx.y, b = blockIdx.z;
  CtaWork w;
  if (a.per_query_head) {
    w.h0 = unit;
    w.g = unit / a.group;
    w.nh = 1;
    w.list = unit;
  } else {
    w.g = unit / a.head_blocks;
    const int hb = unit % a.head_blocks;
    w.h0 = w.g * a.group + hb * kHeadsPerUnit;
    w.nh = min(kHeadsPerUnit, a.group - hb * kHeadsPerUnit);
    w.list = w.g;
  }
  const auto rows = src.Bind(b, w.list, w.g);
  w.begin = static_cast<int64_t>(split) * a.chunk;
  w.end = min(rows.count(), w.begin + a.chunk);
  w.kbase = (a.k_seqs != nullptr ? static_cast<const __nv_bfloat16*>(a.k_seqs[b])
                                 : a.k + b * a.kv_batch_stride) +
            w.g * a.kv_head_stride;
  w.vbase = (a.v_seqs != nullptr ? static_cast<const __nv_bfloat16*>(a.v_seqs[b])
                                 : a.v + b * a.kv_batch_stride) +
            w.g * a.kv_head_stride;
  const int lane = threadIdx.x % 32, r = lane / 4, c = lane % 4;
  // Queries as the A operand, dims permuted like K's (see Tile); rows >= nh are zero.
  uint32_t qa[D / 16][2];
  const __nv_bfloat16* qh =
      a.q + b * a.q_batch_stride + (w.h0 + min(r, w.nh - 1)) * a.q_head_stride;
#pragma unroll
  for (int kt = 0; kt < D / 16; ++kt) {
    const int d = 8 * (4 * (kt / 2) + c) + 4 * (kt & 1);
    qa[kt][0] = r < w.nh ? LoadPair(qh + d) : 0u;
    qa[kt][1] = r < w.nh ? LoadPair(qh + d + 2) : 0u;
  }
  WarpState<D> st;
#pragma unroll
  for (int u = 0; u < D / 16; ++u) st.o[u][0] = st.o[u][1] = st.o[u][2] = st.o[u][3] = 0.0f;
  if constexpr (kStages >= 2) {
    extern __shared__ uint4 pipe[];
    uint32_t* valid = reinterpret_cast<uint32_t*>(pipe + kStages * kPieces<D> * kThreads);
    MainLoopPipelined<D, kStages>(st, qa, rows, w, a, pipe, valid);
    static_assert(sizeof(CtaScratch<D>) <= kPipelineBytes<D, kStages>, "scratch aliases the pipe");
    MergeAndWrite<D>(st, w, a, *reinterpret_cast<CtaScratch<D>*>(pipe));
  } else {
    MainLoopRegisters<D>(st, qa, rows, w, a);
    __shared__ CtaScratch<D> sc;
    MergeAndWrite<D>(st, w, a, sc);
  }
}

// The register loop unless SF_DECODE_PIPELINE=smem (head dims 64 and 128; the benchmark
// compares both). Measured on H100 (bench/NOTES.md): the shared-memory pipeline reads
// 15-16% slower at batch 16 (0.81-0.85 of the copy floor against 0.97-1.00) and 12-18%
// slower at batch 1; head dim 256 has only the register loop.
inline constexpr int kPipelineStages = 3;
template <int D>
bool UsePipeline() {
  if constexpr (D > 128) {
    return false;
  } else {
    const char* env = std::getenv("SF_DECODE_PIPELINE");
    return env != nullptr && env[0] == 's';
  }
}

template <int D, class Source, int kStages>
cudaError_t PrepareKernel() {
  if constexpr (kStages >= 2) {
    static const cudaError_t e = cudaFuncSetAttribute(SplitKvKernel<D, Source, kStages>,
                                                      cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                      static_cast<int>(kPipelineBytes<D, kStages>));
    return e;
  } else {
    return cudaSuccess;
  }
}

template <int D, class Source, int kStages>
cudaError_t LaunchVariant(const SplitKvArgs& args, const Source& source, dim3 grid,
                          cudaStream_t stream) {
  cudaError_t e = PrepareKernel<D, Source, kStages>();
  if (e != cudaSuccess) return e;
  const size_t smem = kStages >= 2 ? kPipelineBytes<D, kStages> : 0;
  e = pdl_internal::LaunchPdl(SplitKvKernel<D, Source, kStages>, grid, dim3(kThreads), smem, stream,
                              args, source);
  return e != cudaSuccess ? e : cudaGetLastError();
}

template <int D, class Source, int kStages>
int BlocksPerSmVariant() {
  static const int blocks = [] {
    if (PrepareKernel<D, Source, kStages>() != cudaSuccess) return 1;
    int n = 0;
    const size_t smem = kStages >= 2 ? kPipelineBytes<D, kStages> : 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, SplitKvKernel<D, Source, kStages>,
                                                      kThreads, smem) != cudaSuccess) {
      return 1;
    }
    return n > 0 ? n : 1;
  }();
  return blocks;
}

template <int D, class Source>
cudaError_t LaunchSplitKv(const SplitKvArgs& args, const Source& source, dim3 grid,
                          cudaStream_t stream) {
  if constexpr (D <= 128) {
    if (UsePipeline<D>()) {
      return LaunchVariant<D, Source, kPipelineStages>(args, source, grid, stream);
    }
  }
  return LaunchVariant<D, Source, 0>(args, source, grid, stream);
}

template <int D, class Source>
int SplitKvBlocksPerSm() {
  if constexpr (D <= 128) {
    if (UsePipeline<D>()) return BlocksPerSmVariant<D, Source, kPipelineStages>();
  }
  return BlocksPerSmVariant<D, Source, 0>();
}

#define SF_INSTANTIATE_SPLIT_KV(D, Source)                                               \
  template cudaError_t LaunchSplitKv<D, Source>(const SplitKvArgs&, const Source&, dim3, \
                                                cudaStream_t);                           \
  template int SplitKvBlocksPerSm<D, Source>();

}  // namespace sf::cuda::decode_internal

#endif  // SF_KERNELS_CUDA_ATTENTION_DECODE_SPLIT_KV_IMPL_CUH_
