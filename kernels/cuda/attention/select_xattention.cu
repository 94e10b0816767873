// xattention on the GPU. Antidiagonal cell scores are one matrix product: reduced row r is
// the concatenation over t of query r*S + S-1-t, reduced column c that of key c*S + t, so
// cell (r, c) = sum_t q[r*S + S-1-t] . k[c*S + t] with an inner dimension of S * D.
//   1. Tile kernel: a CTA of 8 warps computes a 128 x 128 tile of cell scores (causal tiles
//      only) on tensor cores (mma.sync bf16, warp tiles of 32 x 64), streaming the inner
//      dimension in chunks of 64 through three cp.async stages; its epilogue writes, for
//      each (row, key block) of the tile, the log2-sum-exp2 of the row's scaled scores in
//      that block (scratch: one float per (row, causal key block)).
//   2. Mass and choice: a CTA per (query head, query block) turns its rows' scratch into
//      row log-sum-exps and the block mass, finds by radix descent how many blocks reach
//      the threshold (sink and diagonal blocks first), and takes them by radix top-k.
//   3. Offsets (one scan over all lists) and packing into the BlockSelection.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cuda/attention/select.h"
#include "kernels/cuda/attention/select_blocks.cuh"
#include "kernels/cuda/attention/select_device.cuh"
#include "kernels/cuda/attention/select_host.h"
#include "kernels/cuda/check.h"

namespace sf::cuda {
namespace select_internal {
namespace {

constexpr int kTile = 128;  // reduced rows and columns per CTA
constexpr int kChunk = 64;  // inner-dimension elements per pipeline stage
constexpr int kTileThreads = 256;
constexpr int kStageStride = kChunk + 8;  // bf16 per shared row (conflict-free fragments)
constexpr int kStageElems = 2 * kTile * kStageStride;  // A and B of one stage
constexpr int kStages = 3;
constexpr int kTileSmem = kStages * kStageElems * 2;  // bytes
constexpr int kScoreStride = kTile + 1;               // floats per epilogue row
static_assert(kTile * kScoreStride * 4 <= kTileSmem, "the epilogue reuses the stages");
constexpr int kChooseThreads = 256;

struct XAttnArgs {
  const __nv_bfloat16* q;
  int64_t q_row_stride, q_head_stride;
  const __nv_bfloat16* k;
  int64_t kv_head_stride, kv_row_stride;
  int group, stride, rows_per_block;  // S, R = block / S (R divides kTile)
  int64_t lq, lk, q_offset;
  int64_t first_r, last_r;  // reduced rows of the call
  int64_t first_tile_cols;  // column tiles of row tile 0
  int row_tiles;
  float scale_log2;  // log2(e) / (sqrt(D) S)
  int64_t scratch_per_head;
  float* scratch;  // [hq][triangle] log2-sum-exp2 per (row, causal key block)
};

// Entries of the causal triangle before reduced row r: sum over r' < r of (r' / R + 1).
__device__ __host__ inline int64_t TriangleBefore(int64_t r, int64_t big_r) {
  const int64_t q = r / big_r;
  return r + big_r * q * (q - 1) / 2 + (r - q * big_r) * q;
}

// Tiles of row tiles [0, rt): row tile i has first_tile_cols + i column tiles.
__device__ __host__ inline int64_t TilesBefore(int64_t rt, int64_t first_tile_cols) {
  return rt * first_tile_cols + rt * (rt - 1) / 2;
}

template <int D>
__global__ void __launch_bounds__(kTileThreads, 2) XAttnTileKernel(XAttnArgs a) {
  extern __shared__ __align__(16) unsigned char smem[];
  __nv_bfloat16* stages = reinterpret_cast<__nv_bfloat16*>(smem);
  // Which (row tile, column tile) of the causal triangle this CTA computes.
  const int64_t p = blockIdx.x;
  const double base = static_cast<double>(a.first_tile_cols) - 0.5;
  int64_t rt = static_cast<int64_t>(sqrt(base * base + 2.0 * p) - base);
  while (rt > 0 && TilesBefore(rt, a.first_tile_cols) > p) --rt;
  while (TilesBefore(rt + 1, a.first_tile_cols) <= p) ++rt;
  const int64_t ct = p - TilesBefore(rt, a.first_tile_cols);
  const int64_t r0 = a.first_r + rt * kTile, c0 = ct * kTile;
  const int64_t r_last = min(r0 + kTile - 1, a.last_r);
  if (rt >= a.row_tiles || c0 > r_last) return;

  const int h = blockIdx.y, kvh = h / a.group, st = a.stride;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
  const int wm = warp & 3, wn = warp >> 2;  // warp tile: rows 32 wm.., columns 64 wn..
  const int64_t first_pos = a.q_offset, last_pos = a.q_offset + a.lq - 1;
  const __nv_bfloat16* qh = a.q + int64_t{h} * a.q_head_stride;
  const __nv_bfloat16* kh = a.k + int64_t{kvh} * a.kv_head_stride;
  const int chunks = st * D / kChunk;

  auto load_chunk = [&](int kc) {
    const int t = kc * kChunk / D, x0 = kc * kChunk % D;
    __nv_bfloat16* as = stages + (kc % kStages) * kStageElems;
    __nv_bfloat16* bs = as + kTile * kStageStride;
    for (int x = threadIdx.x; x < kTile * (kChunk / 8); x += kTileThreads) {
      const int i = x / (kChunk / 8), piece = x % (kChunk / 8);
      const int64_t r = r0 + i, pos = r * st + st - 1 - t;
      const bool qv = r <= a.last_r && pos >= first_pos && pos <= last_pos;
      CopyAsync16(as + i * kStageStride + piece * 8,
                  qh + (qv ? pos - a.q_offset : 0) * a.q_row_stride + x0 + piece * 8, qv);
      const int64_t key = (c0 + i) * st + t;
      const bool kv = key < a.lk;
      CopyAsync16(bs + i * kStageStride + piece * 8,
                  kh + (kv ? key : 0) * a.kv_row_stride + x0 + piece * 8, kv);
    }
    CopyAsyncCommit();
  };

  float acc[2][8][4];
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[mi][j][0] = acc[mi][j][1] = acc[mi][j][2] = acc[mi][j][3] = 0.f;

  // Three stages, two chunks in flight; one barrier per chunk: after it every warp is done
  // with the stage the next load overwrites.
  load_chunk(0);
  if (chunks > 1) load_chunk(1);
  for (int kc = 0; kc < chunks; ++kc) {
    if (kc + 1 < chunks) {
      CopyAsyncWait<1>();
    } else {
      CopyAsyncWait<0>();
    }
    __syncthreads();
    if (kc + 2 < chunks) load_chunk(kc + 2);
    const __nv_bfloat16* as = stages + (kc % kStages) * kStageElems;
    const __nv_bfloat16* bs = as + kTile * kStageStride;
#pragma unroll
    for (int ks = 0; ks < kChunk / 16; ++ks) {
      uint32_t af[2][4];
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
        LoadMatrixX4(
            as + (wm * 32 + mi * 16 + (lane & 15)) * kStageStride + ks * 16 + (lane >> 4) * 8,
            af[mi]);
      }
#pragma unroll
      for (int j = 0; j < 8; j += 2) {
        // b[0], b[1]: n-tile j; b[2], b[3]: n-tile j + 1.
        uint32_t b[4];
        LoadMatrixX4(bs + (wn * 64 + 8 * j + ((lane >> 4) << 3) + (lane & 7)) * kStageStride +
                         ks * 16 + ((lane >> 3) & 1) * 8,
                     b);
        MmaBf16(acc[0][j], af[0], b[0], b[1]);
        MmaBf16(acc[1][j], af[1], b[0], b[1]);
        MmaBf16(acc[0][j + 1], af[0], b[2], b[3]);
        MmaBf16(acc[1][j + 1], af[1], b[2], b[3]);
      }
    }
  }
  __syncthreads();  // the epilogue reuses the stages

  // Epilogue: scaled, causally masked scores into shared memory (over the stages).
  float* scores = reinterpret_cast<float*>(smem);
#pragma unroll
  for (int mi = 0; mi < 2; ++mi) {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = wm * 32 + mi * 16 + g + (e >= 2 ? 8 : 0);
        const int c = wn * 64 + 8 * j + 2 * tq + (e & 1);
        const bool valid = r0 + i <= a.last_r && c0 + c <= r0 + i;
        scores[i * kScoreStride + c] = valid ? acc[mi][j][e] * a.scale_log2 : -INFINITY;
      }
    }
  }
  __syncthreads();
  const int big_r = a.rows_per_block, kbs = kTile / big_r;
  float* scratch_h = a.scratch + int64_t{h} * a.scratch_per_head;
  const int64_t tri0 = TriangleBefore(a.first_r, big_r);
  for (int x = threadIdx.x; x < kTile * kbs; x += kTileThreads) {
    const int i = x / kbs, kbl = x % kbs;
    const int64_t r = r0 + i, kb = c0 / big_r + kbl;
    if (r > a.last_r || kb > r / big_r) continue;
    const float* row = scores + i * kScoreStride + kbl * big_r;
    float m = -INFINITY;
    for (int c = 0; c < big_r; ++c) m = fmaxf(m, row[c]);
    float sum = 0.f;
    for (int c = 0; c < big_r; ++c) sum += exp2f(row[c] - m);
    scratch_h[(TriangleBefore(r, big_r) - tri0) + kb] = m + log2f(sum);
  }
}

struct XAttnChooseArgs {
  int rows_per_block;
  int64_t first_r, last_r;
  int first_qb, nqb, nb;
  double threshold;
  int64_t scratch_per_head;
  const float* scratch;
  int32_t* staging;  // [hq][nqb][nb]
  int32_t* counts;   // [hq][nqb]
};

__global__ void __launch_bounds__(kChooseThreads) XAttnChooseKernel(XAttnChooseArgs a) {
  __shared__ TopKShared sm;
  __shared__ CoverShared cs;
  __shared__ double red[32];
  __shared__ double total_sh;
  extern __shared__ __align__(16) float mass[];  // [qb + 1], then [R] row log-sum-exps
  const int b = blockIdx.x, h = blockIdx.y;
  const int qb = a.first_qb + b, cols = qb + 1;
  const int big_r = a.rows_per_block;
  const int64_t rb = max(int64_t{qb} * big_r, a.first_r);
  const int64_t re = min(int64_t{qb + 1} * big_r, a.last_r + 1);
  const float* scratch_h = a.scratch + int64_t{h} * a.scratch_per_head;
  const int64_t tri0 = TriangleBefore(a.first_r, big_r);
  float* lse = mass + a.nb;
  // Row log-sum-exps over the row's key blocks: one warp per row.
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int64_t r = rb + warp; r < re; r += kChooseThreads / 32) {
    const float* l = scratch_h + (TriangleBefore(r, big_r) - tri0);
    float m = -INFINITY;
    for (int kb = lane; kb < cols; kb += 32) m = fmaxf(m, l[kb]);
    for (int off = 16; off > 0; off /= 2) m = fmaxf(m, __shfl_xor_sync(kFullMask, m, off));
    float s = 0.f;
    for (int kb = lane; kb < cols; kb += 32) s += exp2f(l[kb] - m);
    for (int off = 16; off > 0; off /= 2) s += __shfl_xor_sync(kFullMask, s, off);
    if (lane == 0) lse[r - rb] = m + log2f(s);
  }
  __syncthreads();
  double local_total = 0;
  for (int kb = threadIdx.x; kb < cols; kb += kChooseThreads) {
    float m = 0.f;
    for (int64_t r = rb; r < re; ++r) {
      const float l = scratch_h[(TriangleBefore(r, big_r) - tri0) + kb];
      if (l != -INFINITY) m += exp2f(l - lse[r - rb]);
    }
    mass[kb] = m;
    local_total += m;
  }
  BlockExclusiveSum<kChooseThreads>(local_total, red, &total_sh);  // also publishes mass[]
  const double total = total_sh;
  int32_t* out = a.staging + (int64_t{h} * a.nqb + b) * a.nb;
  int k = cols;
  if (a.threshold < 1.0) {
    const int forced = qb >= 1 ? 2 : 1;
    const double forced_mass = mass[0] + (qb >= 1 ? mass[qb] : 0.f);
    const double room = a.threshold * total - forced_mass;
    int others = 0;
    if (room > 0 && cols > forced) {
      others = CoverCountDevice<kChooseThreads, true>(
          [&](int i) { return (i == 0 || i == qb) ? -1.f : mass[i]; }, cols, room, sm, cs);
      others = min(others, cols - forced);
    }
    k = forced + others;
  }
  SelectTopKSorted<kChooseThreads>(
      [&](int i) { return (i == 0 || i == qb) ? kForcedKey : OrderedKey(mass[i]); }, cols, k, sm,
      out);
  if (threadIdx.x == 0) a.counts[int64_t{h} * a.nqb + b] = k;
}

}  // namespace
}  // namespace select_internal

namespace {

using select_internal::CheckCapacity;
using select_internal::CheckPrefillShape;
using select_internal::PrefillShape;
using select_internal::WorkspaceCarver;

struct XAttnPlan {
  int64_t rows_per_block = 0;  // R
  int64_t first_r = 0, last_r = 0;
  int64_t row_tiles = 0, first_tile_cols = 0, tiles = 0;  // 128 x 128 score tiles
  int64_t first_qb = 0, nqb = 0, nb = 0;
  int64_t scratch_per_head = 0;
  float* scratch = nullptr;
  int32_t* staging = nullptr;
  int32_t* counts = nullptr;
  int64_t workspace_bytes = 0;
};

absl::StatusOr<XAttnPlan> PlanXAttention(const PrefillShape& s, const kernels::XAttentionParams& p,
                                         void* base) {
  if (p.block < 1 || p.stride < 1 || p.stride > p.block || p.block % p.stride != 0) {
    return absl::InvalidArgumentError(absl::StrCat("parameter 'stride' of method xattention (",
                                                   p.stride, ") must divide 'block' (", p.block,
                                                   ")"));
  }
  if (s.q_offset % p.block != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("xattention selection: the queries' first position (", s.q_offset,
                     ") must be a multiple of parameter 'block' (", p.block, ") on the GPU"));
  }
  XAttnPlan plan;
  plan.rows_per_block = p.block / p.stride;
  plan.first_r = s.q_offset / p.stride;
  plan.last_r = (s.q_offset + s.lq - 1) / p.stride;
  if (select_internal::kTile % plan.rows_per_block != 0) {
    return absl::InvalidArgumentError(absl::StrCat("xattention selection: 'block' / 'stride' (",
                                                   plan.rows_per_block,
                                                   ") must divide 128 on the GPU"));
  }
  plan.row_tiles = (plan.last_r - plan.first_r + select_internal::kTile) / select_internal::kTile;
  plan.first_tile_cols = (plan.first_r + select_internal::kTile - 1) / select_internal::kTile + 1;
  plan.tiles = select_internal::TilesBefore(plan.row_tiles, plan.first_tile_cols);
  plan.first_qb = s.q_offset / p.block;
  plan.nqb = (s.lq + p.block - 1) / p.block;
  plan.nb = plan.first_qb + plan.nqb;
  auto tri = [&](int64_t r) {
    const int64_t q = r / plan.rows_per_block;
    return r + plan.rows_per_block * q * (q - 1) / 2 + (r - q * plan.rows_per_block) * q;
  };
  plan.scratch_per_head = tri(plan.last_r + 1) - tri(plan.first_r);
  WorkspaceCarver carver(base);
  plan.scratch = carver.Take<float>(int64_t{s.hq} * plan.scratch_per_head);
  plan.staging = carver.Take<int32_t>(int64_t{s.hq} * plan.nqb * plan.nb);
  plan.counts = carver.Take<int32_t>(int64_t{s.hq} * plan.nqb);
  plan.workspace_bytes = carver.used();
  return plan;
}

template <int D>
absl::Status LaunchXAttnTiles(const select_internal::XAttnArgs& a, const XAttnPlan& plan, int hq,
                              cudaStream_t stream) {
  SF_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(select_internal::XAttnTileKernel<D>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               select_internal::kTileSmem));
  select_internal::XAttnTileKernel<D>
      <<<dim3(static_cast<unsigned>(plan.tiles), hq), select_internal::kTileThreads,
         select_internal::kTileSmem, stream>>>(a);
  return CudaStatus(cudaGetLastError(), "xattention tile kernel");
}

}  // namespace

absl::StatusOr<SelectionSizes> XAttentionSelectSizes(const AttentionParams& attn,
                                                     const kernels::XAttentionParams& p) {
  SF_ASSIGN_OR_RETURN(PrefillShape s, CheckPrefillShape(attn, "xattention"));
  SF_ASSIGN_OR_RETURN(XAttnPlan plan, PlanXAttention(s, p, nullptr));
  SelectionSizes z;
  z.workspace_bytes = plan.workspace_bytes;
  z.block_offsets = int64_t{s.hq} * plan.nqb + 1;
  int64_t most = 0;  // every causal block of every list
  for (int64_t b = 0; b < plan.nqb; ++b) most += plan.first_qb + b + 1;
  z.key_blocks = most * s.hq;
  return z;
}

absl::StatusOr<BlockSelection> SelectXAttention(const AttentionParams& attn,
                                                const kernels::XAttentionParams& p,
                                                const SelectionBuffers& out) {
  SF_ASSIGN_OR_RETURN(SelectionSizes z, XAttentionSelectSizes(attn, p));
  SF_ASSIGN_OR_RETURN(PrefillShape s, CheckPrefillShape(attn, "xattention"));
  SF_ASSIGN_OR_RETURN(XAttnPlan plan, PlanXAttention(s, p, out.workspace));
  SF_RETURN_IF_ERROR(CheckCapacity("xattention", "workspace", out.workspace, out.workspace_bytes,
                                   z.workspace_bytes));
  SF_RETURN_IF_ERROR(CheckCapacity("xattention", "key_blocks", out.key_blocks,
                                   out.key_blocks_capacity, z.key_blocks));
  if (out.block_offsets == nullptr) {
    return absl::InvalidArgumentError("xattention selection: block_offsets must be given");
  }
  select_internal::XAttnArgs a;
  a.q = static_cast<const __nv_bfloat16*>(attn.q);
  a.q_row_stride = attn.q_row_stride;
  a.q_head_stride = attn.q_head_stride;
  a.k = static_cast<const __nv_bfloat16*>(attn.k);
  a.kv_head_stride = attn.kv_head_stride;
  a.kv_row_stride = attn.kv_row_stride;
  a.group = s.group;
  a.stride = static_cast<int>(p.stride);
  a.rows_per_block = static_cast<int>(plan.rows_per_block);
  a.lq = s.lq;
  a.lk = s.lk;
  a.q_offset = s.q_offset;
  a.first_r = plan.first_r;
  a.last_r = plan.last_r;
  a.first_tile_cols = plan.first_tile_cols;
  a.row_tiles = static_cast<int>(plan.row_tiles);
  a.scale_log2 =
      static_cast<float>(1.4426950408889634 / (std::sqrt(static_cast<double>(s.d)) * p.stride));
  a.scratch_per_head = plan.scratch_per_head;
  a.scratch = plan.scratch;
  switch (s.d) {
    case 64:
      SF_RETURN_IF_ERROR(LaunchXAttnTiles<64>(a, plan, s.hq, attn.stream));
      break;
    case 128:
      SF_RETURN_IF_ERROR(LaunchXAttnTiles<128>(a, plan, s.hq, attn.stream));
      break;
    default:
      SF_RETURN_IF_ERROR(LaunchXAttnTiles<256>(a, plan, s.hq, attn.stream));
  }
  select_internal::XAttnChooseArgs c;
  c.rows_per_block = static_cast<int>(plan.rows_per_block);
  c.first_r = plan.first_r;
  c.last_r = plan.last_r;
  c.first_qb = static_cast<int>(plan.first_qb);
  c.nqb = static_cast<int>(plan.nqb);
  c.nb = static_cast<int>(plan.nb);
  c.threshold = p.threshold;
  c.scratch_per_head = plan.scratch_per_head;
  c.scratch = plan.scratch;
  c.staging = plan.staging;
  c.counts = plan.counts;
  const int mass_bytes = static_cast<int>(4 * (plan.nb + plan.rows_per_block));
  SF_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(
      select_internal::XAttnChooseKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, mass_bytes));
  select_internal::XAttnChooseKernel<<<dim3(c.nqb, s.hq), select_internal::kChooseThreads,
                                       mass_bytes, attn.stream>>>(c);
  SF_RETURN_IF_ERROR(CudaStatus(cudaGetLastError(), "xattention choice kernel"));
  SF_RETURN_IF_ERROR(
      select_internal::LaunchPackBlockLists(plan.counts, plan.staging, int64_t{s.hq} * plan.nqb,
                                            c.nb, out.block_offsets, out.key_blocks, attn.stream));
  BlockSelection sel;
  sel.heads.count = s.hq;
  sel.block = static_cast<int32_t>(p.block);
  sel.num_query_blocks = static_cast<int32_t>(plan.nqb);
  sel.offsets = out.block_offsets;
  sel.key_blocks = out.key_blocks;
  return sel;
}

}  // namespace sf::cuda
