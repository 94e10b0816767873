// Line mass on tensor cores: a CTA of 8 warps takes 128 of the last query rows of one
// query head (16 per warp, Q fragments in registers) and one chunk of 2048 keys, walking
// it in tiles of 64 keys double-buffered through shared memory by cp.async. Pass 1 keeps
// a running max and sum per row and chunk; a combine kernel turns them into each row's
// log-sum-exp; pass 2 recomputes the scores, writes the probabilities of a 128 x 64 tile to
// shared memory and sums them along columns (one atomic per key and CTA) and diagonals
// (kept per chunk in shared memory, one atomic per offset and CTA).
#include <cuda_bf16.h>

#include <cmath>

#include "common/status.h"
#include "kernels/cuda/attention/select_device.cuh"
#include "kernels/cuda/attention/select_line_mass.cuh"
#include "kernels/cuda/check.h"

namespace sf::cuda::select_internal {
namespace {

constexpr int kRows = 128;    // query rows per CTA (16 per warp)
constexpr int kKeys = 64;     // keys per tile
constexpr int kChunk = 2048;  // keys per CTA
constexpr int kThreads = kRows * 2;
constexpr int kDiagonals = kKeys + kRows - 1;  // offsets one tile covers
constexpr int kTileStride = kKeys + 1;         // floats per row of the probability tile

struct LineMassArgs {
  const __nv_bfloat16* q;
  int64_t q_row_stride, q_head_stride;
  const __nv_bfloat16* k;
  int64_t kv_head_stride, kv_row_stride;
  int group;
  int64_t lq, lk, q_offset;
  int64_t first_row;  // call row of the first estimating query
  int last_q;
  int rows_pad;
  int chunks;
  float scale_log2;  // log2(e) / sqrt(D)
  LineMassBuffers b;
};

template <int D>
constexpr int KRowStride() {
  return D + 8;  // bf16 per shared K row: 16 bytes of padding keep fragment loads conflict-free
}

template <int D>
constexpr int SharedBytes() {
  return 2 * kKeys * KRowStride<D>() * 2 + kRows * kTileStride * 4 + (kChunk + kRows) * 4;
}

template <int D, bool kSums>
__global__ void __launch_bounds__(kThreads) LineMassKernel(LineMassArgs a) {
  extern __shared__ __align__(16) unsigned char smem[];
  __nv_bfloat16* k_tiles = reinterpret_cast<__nv_bfloat16*>(smem);
  float* p_tile = reinterpret_cast<float*>(k_tiles + 2 * kKeys * KRowStride<D>());
  float* diag_acc = p_tile + kRows * kTileStride;

  const int h = blockIdx.z, rt = blockIdx.y, chunk = blockIdx.x;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int64_t tile_row0 = a.first_row + int64_t{rt} * kRows;
  const int64_t pos0 = a.q_offset + tile_row0;
  const int64_t last_pos = a.q_offset + min(tile_row0 + kRows - 1, a.lq - 1);
  const int64_t key_begin = int64_t{chunk} * kChunk;
  const int64_t key_end = min(min(key_begin + kChunk, a.lk), last_pos + 1);
  const int ntiles =
      key_end > key_begin ? static_cast<int>((key_end - key_begin + kKeys - 1) / kKeys) : 0;

  const int r_lo = warp * 16 + g, r_hi = r_lo + 8;  // this thread's rows in the tile
  const bool v_lo = rt * kRows + r_lo < a.last_q, v_hi = rt * kRows + r_hi < a.last_q;
  const int64_t pos_lo = pos0 + r_lo, pos_hi = pos0 + r_hi;

  uint32_t qa[D / 16][4];
  {
    const __nv_bfloat16* qh = a.q + int64_t{h} * a.q_head_stride;
    const __nv_bfloat16* q_lo = qh + (tile_row0 + r_lo) * a.q_row_stride;
    const __nv_bfloat16* q_hi = qh + (tile_row0 + r_hi) * a.q_row_stride;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      qa[ks][0] = v_lo ? LoadPair(q_lo + 16 * ks + 2 * t) : 0u;
      qa[ks][1] = v_hi ? LoadPair(q_hi + 16 * ks + 2 * t) : 0u;
      qa[ks][2] = v_lo ? LoadPair(q_lo + 16 * ks + 2 * t + 8) : 0u;
      qa[ks][3] = v_hi ? LoadPair(q_hi + 16 * ks + 2 * t + 8) : 0u;
    }
  }
  const size_t row_index = (size_t{static_cast<size_t>(h)} * a.rows_pad + rt * kRows);
  float m_lo = -INFINITY, l_lo = 0.f, m_hi = -INFINITY, l_hi = 0.f;
  float lse_lo = INFINITY, lse_hi = INFINITY;
  if constexpr (kSums) {
    if (ntiles == 0) return;
    lse_lo = a.b.lse2[row_index + r_lo];
    lse_hi = a.b.lse2[row_index + r_hi];
    for (int i = threadIdx.x; i < kChunk + kRows; i += kThreads) diag_acc[i] = 0.f;
  }

  const __nv_bfloat16* kh = a.k + int64_t{h / a.group} * a.kv_head_stride;
  auto load_tile = [&](int tile) {
    __nv_bfloat16* dst = k_tiles + (tile & 1) * kKeys * KRowStride<D>();
    const int64_t key0 = key_begin + int64_t{tile} * kKeys;
    constexpr int kPieces = D / 8;  // 16-byte pieces per key row
    for (int x = threadIdx.x; x < kKeys * kPieces; x += kThreads) {
      const int row = x / kPieces, piece = x % kPieces;
      const int64_t key = key0 + row;
      const bool valid = key < a.lk;
      CopyAsync16(dst + row * KRowStride<D>() + piece * 8,
                  kh + (valid ? key : 0) * a.kv_row_stride + piece * 8, valid);
    }
    CopyAsyncCommit();
  };

  if (ntiles > 0) load_tile(0);
  for (int tile = 0; tile < ntiles; ++tile) {
    if (tile + 1 < ntiles) {
      load_tile(tile + 1);
      CopyAsyncWait<1>();
    } else {
      CopyAsyncWait<0>();
    }
    __syncthreads();
    const __nv_bfloat16* kt = k_tiles + (tile & 1) * kKeys * KRowStride<D>();
    float s[kKeys / 8][4];
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
#pragma unroll
      for (int j = 0; j < kKeys / 8; j += 2) {
        uint32_t b[4];  // key tiles j and j + 1
        LoadMatrixX4(kt + (8 * j + ((lane >> 4) << 3) + (lane & 7)) * KRowStride<D>() + 16 * ks +
                         ((lane >> 3) & 1) * 8,
                     b);
        MmaBf16(s[j], qa[ks], b[0], b[1]);
        MmaBf16(s[j + 1], qa[ks], b[2], b[3]);
      }
    }
    const int64_t key0 = key_begin + int64_t{tile} * kKeys;
    if constexpr (!kSums) {
      float tmax_lo = -INFINITY, tmax_hi = -INFINITY;
#pragma unroll
      for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int64_t key = key0 + 8 * j + 2 * t + (e & 1);
          const bool hi = e >= 2;
          const bool valid = hi ? (v_hi && key <= pos_hi) : (v_lo && key <= pos_lo);
          s[j][e] = valid ? s[j][e] * a.scale_log2 : -INFINITY;
          if (hi) {
            tmax_hi = fmaxf(tmax_hi, s[j][e]);
          } else {
            tmax_lo = fmaxf(tmax_lo, s[j][e]);
          }
        }
      }
      const float mn_lo = fmaxf(m_lo, tmax_lo), mn_hi = fmaxf(m_hi, tmax_hi);
      if (mn_lo != -INFINITY) l_lo *= exp2f(m_lo - mn_lo);
      if (mn_hi != -INFINITY) l_hi *= exp2f(m_hi - mn_hi);
#pragma unroll
      for (int j = 0; j < kKeys / 8; ++j) {
        if (mn_lo != -INFINITY) l_lo += exp2f(s[j][0] - mn_lo) + exp2f(s[j][1] - mn_lo);
        if (mn_hi != -INFINITY) l_hi += exp2f(s[j][2] - mn_hi) + exp2f(s[j][3] - mn_hi);
      }
      m_lo = mn_lo;
      m_hi = mn_hi;
    } else {
#pragma unroll
      for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int c = 8 * j + 2 * t + (e & 1);
          const bool hi = e >= 2;
          const int64_t key = key0 + c;
          const bool valid = hi ? (v_hi && key <= pos_hi) : (v_lo && key <= pos_lo);
          const float p = valid ? exp2f(s[j][e] * a.scale_log2 - (hi ? lse_hi : lse_lo)) : 0.f;
          p_tile[(hi ? r_hi : r_lo) * kTileStride + c] = p;
        }
      }
      __syncthreads();
      if (threadIdx.x >= kThreads - kKeys) {
        const int c = threadIdx.x - (kThreads - kKeys);
        float sum = 0.f;
        for (int r = 0; r < kRows; ++r) sum += p_tile[r * kTileStride + c];
        if (sum != 0.f) atomicAdd(&a.b.columns[int64_t{h} * a.lk + key0 + c], sum);
      }
      if (threadIdx.x < kDiagonals) {
        const int delta = static_cast<int>(threadIdx.x) - (kKeys - 1);  // row - column
        float sum = 0.f;
        for (int r = max(0, delta); r < min(kRows, kKeys + delta); ++r) {
          sum += p_tile[r * kTileStride + (r - delta)];
        }
        diag_acc[(key_begin - key0) + kChunk - 1 + delta] += sum;
      }
    }
    __syncthreads();  // the K buffer and the probability tile are reused next
  }

  if constexpr (!kSums) {
#pragma unroll
    for (int off = 1; off < 4; off *= 2) {
      const float mo_lo = __shfl_xor_sync(kFullMask, m_lo, off);
      const float lo_lo = __shfl_xor_sync(kFullMask, l_lo, off);
      const float mo_hi = __shfl_xor_sync(kFullMask, m_hi, off);
      const float lo_hi = __shfl_xor_sync(kFullMask, l_hi, off);
      const float mn_lo = fmaxf(m_lo, mo_lo), mn_hi = fmaxf(m_hi, mo_hi);
      if (mn_lo != -INFINITY) l_lo = l_lo * exp2f(m_lo - mn_lo) + lo_lo * exp2f(mo_lo - mn_lo);
      if (mn_hi != -INFINITY) l_hi = l_hi * exp2f(m_hi - mn_hi) + lo_hi * exp2f(mo_hi - mn_hi);
      m_lo = mn_lo;
      m_hi = mn_hi;
    }
    if (t == 0) {
      a.b.part_m[(row_index + r_lo) * a.chunks + chunk] = m_lo;
      a.b.part_l[(row_index + r_lo) * a.chunks + chunk] = l_lo;
      a.b.part_m[(row_index + r_hi) * a.chunks + chunk] = m_hi;
      a.b.part_l[(row_index + r_hi) * a.chunks + chunk] = l_hi;
    }
  } else {
    const int64_t diag_base = pos0 - key_begin - kChunk + 1;
    for (int i = threadIdx.x; i < kChunk + kRows; i += kThreads) {
      const int64_t d = diag_base + i;
      const float v = diag_acc[i];
      if (d >= 0 && d < a.lk && v != 0.f) atomicAdd(&a.b.diagonals[int64_t{h} * a.lk + d], v);
    }
  }
}

__global__ void CombineRowsKernel(const float* __restrict__ part_m,
                                  const float* __restrict__ part_l, int rows, int chunks,
                                  float* __restrict__ lse2) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  float m = -INFINITY;
  for (int c = 0; c < chunks; ++c) m = fmaxf(m, part_m[int64_t{r} * chunks + c]);
  float l = 0.f;
  if (m != -INFINITY) {
    for (int c = 0; c < chunks; ++c) {
      const float mc = part_m[int64_t{r} * chunks + c];
      if (mc != -INFINITY) l += part_l[int64_t{r} * chunks + c] * exp2f(mc - m);
    }
  }
  lse2[r] = m == -INFINITY ? INFINITY : m + log2f(l);
}

int RowsPad(int64_t last_q) { return static_cast<int>((last_q + kRows - 1) / kRows * kRows); }
int Chunks(int64_t lk) { return static_cast<int>((lk + kChunk - 1) / kChunk); }

template <int D>
absl::Status LaunchForDim(const LineMassArgs& args, int row_tiles, int hq, bool sums,
                          cudaStream_t stream) {
  const int bytes = SharedBytes<D>();
  const dim3 grid(args.chunks, row_tiles, hq);
  if (!sums) {
    SF_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(
        LineMassKernel<D, false>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    LineMassKernel<D, false><<<grid, kThreads, bytes, stream>>>(args);
    SF_CUDA_RETURN_IF_ERROR(cudaGetLastError());
    const int rows = hq * args.rows_pad;
    CombineRowsKernel<<<(rows + 255) / 256, 256, 0, stream>>>(args.b.part_m, args.b.part_l, rows,
                                                              args.chunks, args.b.lse2);
    return CudaStatus(cudaGetLastError(), "line mass row kernels");
  }
  SF_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(LineMassKernel<D, true>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  LineMassKernel<D, true><<<grid, kThreads, bytes, stream>>>(args);
  return CudaStatus(cudaGetLastError(), "line mass sum kernel");
}

}  // namespace

LineMassBuffers LineMassWorkspace(const PrefillShape& s, int64_t last_q, WorkspaceCarver* carver) {
  const int64_t rows = int64_t{s.hq} * RowsPad(last_q);
  LineMassBuffers b;
  b.part_m = carver->Take<float>(rows * Chunks(s.lk));
  b.part_l = carver->Take<float>(rows * Chunks(s.lk));
  b.lse2 = carver->Take<float>(rows);
  b.columns = carver->Take<float>(int64_t{s.hq} * s.lk);
  b.diagonals = carver->Take<float>(int64_t{s.hq} * s.lk);
  return b;
}

absl::Status LaunchLineMassPass(const AttentionParams& attn, const PrefillShape& s, int64_t last_q,
                                const LineMassBuffers& b, bool sums) {
  LineMassArgs args;
  args.q = static_cast<const __nv_bfloat16*>(attn.q);
  args.q_row_stride = attn.q_row_stride;
  args.q_head_stride = attn.q_head_stride;
  args.k = static_cast<const __nv_bfloat16*>(attn.k);
  args.kv_head_stride = attn.kv_head_stride;
  args.kv_row_stride = attn.kv_row_stride;
  args.group = s.group;
  args.lq = s.lq;
  args.lk = s.lk;
  args.q_offset = s.q_offset;
  args.first_row = s.lq - last_q;
  args.last_q = static_cast<int>(last_q);
  args.rows_pad = RowsPad(last_q);
  args.chunks = Chunks(s.lk);
  args.scale_log2 = static_cast<float>(1.4426950408889634 / std::sqrt(static_cast<double>(s.d)));
  args.b = b;
  if (sums) {
    SF_CUDA_RETURN_IF_ERROR(
        cudaMemsetAsync(b.columns, 0, sizeof(float) * s.hq * s.lk, attn.stream));
    SF_CUDA_RETURN_IF_ERROR(
        cudaMemsetAsync(b.diagonals, 0, sizeof(float) * s.hq * s.lk, attn.stream));
  }
  const int row_tiles = args.rows_pad / kRows;
  switch (s.d) {
    case 64:
      return LaunchForDim<64>(args, row_tiles, s.hq, sums, attn.stream);
    case 128:
      return LaunchForDim<128>(args, row_tiles, s.hq, sums, attn.stream);
    default:
      return LaunchForDim<256>(args, row_tiles, s.hq, sums, attn.stream);
  }
}

absl::Status LaunchLineMass(const AttentionParams& attn, const PrefillShape& s, int64_t last_q,
                            const LineMassBuffers& b) {
  SF_RETURN_IF_ERROR(LaunchLineMassPass(attn, s, last_q, b, /*sums=*/false));
  return LaunchLineMassPass(attn, s, last_q, b, /*sums=*/true);
}

}  // namespace sf::cuda::select_internal
