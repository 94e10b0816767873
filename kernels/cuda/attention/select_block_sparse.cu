// block_sparse on the GPU: pooled keys and queries, then one CTA per (query block, KV
// head) scores the group's pooled queries against the causal pooled keys (one warp per key
// block, the pooled key row read once for the whole group) and runs the radix top-k per
// query head in shared memory.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>

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

constexpr int kPoolThreads = 128;
constexpr int kSelectThreads = 256;
// Dynamic shared memory for pooled queries and scores (plus the static TopKShared).
constexpr int kScoreSmemBudget = 180 * 1024;

__global__ void PoolRowsKernel(PoolRowsArgs a) {
  const int b = blockIdx.x, h = blockIdx.y;
  const int64_t begin = a.start + int64_t{b} * a.block;
  const int64_t end = min(begin + a.block, a.end);
  const __nv_bfloat16* src = static_cast<const __nv_bfloat16*>(a.src) + int64_t{h} * a.head_stride;
  const float inv = 1.f / static_cast<float>(end - begin);
  for (int x = threadIdx.x; x < a.dim; x += blockDim.x) {
    float sum = 0.f;
    for (int64_t r = begin; r < end; ++r) sum += __bfloat162float(src[r * a.row_stride + x]);
    a.out[(int64_t{h} * a.blocks + b) * a.dim + x] = sum * inv;
  }
}

// Key blocks kept by query block qb (absolute): the top max(budget, forced) of qb + 1.
__device__ __host__ inline int BlockSparseCount(int qb, int budget) {
  const int forced = min(qb + 1, 3);
  return min(qb + 1, max(budget, forced));
}

__global__ void BlockSparseOffsetsKernel(int heads, int first_qb, int nqb, int budget,
                                         int32_t* offsets) {
  const int h = blockIdx.x * blockDim.x + threadIdx.x;
  if (h >= heads) return;
  int32_t per_head = 0;
  for (int b = 0; b < nqb; ++b) per_head += BlockSparseCount(first_qb + b, budget);
  int32_t at = h * per_head;
  for (int b = 0; b < nqb; ++b) {
    offsets[int64_t{h} * nqb + b] = at;
    at += BlockSparseCount(first_qb + b, budget);
  }
  if (h == heads - 1) offsets[int64_t{heads} * nqb] = at;
}

struct BlockSparseArgs {
  const float* pooled_q;  // [hq][nqb][D]
  const float* pooled_k;  // [hkv][nb][D]
  int nqb, nb, first_qb, group, heads_per_pass, dim, budget;
  const int32_t* offsets;
  int32_t* key_blocks;
};

template <int D>
__global__ void __launch_bounds__(kSelectThreads) BlockSparseSelectKernel(BlockSparseArgs a) {
  __shared__ TopKShared sm;
  extern __shared__ __align__(16) float dyn[];
  const int b = blockIdx.x, kvh = blockIdx.y;
  const int qb = a.first_qb + b;
  const int cols = qb + 1;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  constexpr int kWarps = kSelectThreads / 32;
  float* pq = dyn;                             // [heads_per_pass][D]
  float* scores = dyn + a.heads_per_pass * D;  // [heads_per_pass][cols]
  const int k = BlockSparseCount(qb, a.budget);
  for (int h0 = 0; h0 < a.group; h0 += a.heads_per_pass) {
    const int hp = min(a.heads_per_pass, a.group - h0);
    for (int i = threadIdx.x; i < hp * D; i += kSelectThreads) {
      const int hh = i / D, x = i % D;
      const int h = kvh * a.group + h0 + hh;
      pq[i] = a.pooled_q[(int64_t{h} * a.nqb + b) * D + x];
    }
    __syncthreads();
    for (int kb = warp; kb < cols; kb += kWarps) {
      float kv[D / 32];
      const float* kr = a.pooled_k + (int64_t{kvh} * a.nb + kb) * D;
#pragma unroll
      for (int x = 0; x < D / 32; ++x) kv[x] = kr[lane + 32 * x];
      for (int hh = 0; hh < hp; ++hh) {
        float dot = 0.f;
#pragma unroll
        for (int x = 0; x < D / 32; ++x) dot = fmaf(pq[hh * D + lane + 32 * x], kv[x], dot);
#pragma unroll
        for (int off = 16; off > 0; off /= 2) dot += __shfl_xor_sync(kFullMask, dot, off);
        if (lane == 0) scores[hh * cols + kb] = dot;
      }
    }
    __syncthreads();
    for (int hh = 0; hh < hp; ++hh) {
      const int h = kvh * a.group + h0 + hh;
      const float* sc = scores + hh * cols;
      int32_t* out = a.key_blocks + a.offsets[int64_t{h} * a.nqb + b];
      SelectTopKSorted<kSelectThreads>(
          [&](int i) {
            return (i == 0 || i == qb || i == qb - 1) ? kForcedKey : OrderedKey(sc[i]);
          },
          cols, k, sm, out);
      __syncthreads();
    }
  }
}

template <int D>
absl::Status LaunchBlockSparseSelect(const BlockSparseArgs& a, int hkv, cudaStream_t stream) {
  const int bytes = static_cast<int>(sizeof(float)) * a.heads_per_pass * (D + a.nb);
  SF_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(BlockSparseSelectKernel<D>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  BlockSparseSelectKernel<D><<<dim3(a.nqb, hkv), kSelectThreads, bytes, stream>>>(a);
  return CudaStatus(cudaGetLastError(), "block_sparse selection kernel");
}

// Offsets of all lists from their counts: one CTA.
__global__ void __launch_bounds__(1024)
    ScanCountsKernel(const int32_t* counts, int64_t n, int32_t* offsets) {
  __shared__ int32_t warp_totals[32];
  __shared__ int32_t chunk_total;
  int32_t carry = 0;
  for (int64_t base = 0; base < n; base += 1024) {
    const int64_t i = base + threadIdx.x;
    const int32_t v = i < n ? counts[i] : 0;
    const int32_t before = BlockExclusiveSum<1024>(v, warp_totals, &chunk_total);
    if (i < n) offsets[i] = carry + before;
    carry += chunk_total;
    __syncthreads();
  }
  if (threadIdx.x == 0) offsets[n] = carry;
}

__global__ void PackBlockListsKernel(const int32_t* staging, const int32_t* offsets, int stride,
                                     int32_t* key_blocks) {
  const int64_t list = blockIdx.x;
  const int32_t begin = offsets[list], count = offsets[list + 1] - begin;
  for (int i = threadIdx.x; i < count; i += blockDim.x) {
    key_blocks[begin + i] = staging[list * stride + i];
  }
}

}  // namespace

absl::Status LaunchPackBlockLists(const int32_t* counts, const int32_t* staging, int64_t lists,
                                  int stride, int32_t* offsets, int32_t* key_blocks,
                                  cudaStream_t stream) {
  ScanCountsKernel<<<1, 1024, 0, stream>>>(counts, lists, offsets);
  SF_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  PackBlockListsKernel<<<static_cast<unsigned>(lists), 128, 0, stream>>>(staging, offsets, stride,
                                                                         key_blocks);
  return CudaStatus(cudaGetLastError(), "block list packing kernels");
}

absl::Status LaunchPoolRows(const PoolRowsArgs& args, cudaStream_t stream) {
  PoolRowsKernel<<<dim3(args.blocks, args.heads), kPoolThreads, 0, stream>>>(args);
  return CudaStatus(cudaGetLastError(), "block pooling kernel");
}

// Query heads whose pooled query and scores fit the shared-memory budget at once.
int HeadsPerPass(int group, int dim, int64_t cols) {
  const int64_t per_head = int64_t{4} * (dim + cols);
  return static_cast<int>(std::min<int64_t>(group, kScoreSmemBudget / per_head));
}

}  // namespace select_internal

namespace {

using select_internal::CheckCapacity;
using select_internal::CheckPrefillShape;
using select_internal::PrefillShape;
using select_internal::WorkspaceCarver;

struct BlockSparsePlan {
  int64_t nb = 0;        // key blocks over the sequence
  int64_t first_qb = 0;  // position block of query row 0
  int64_t nqb = 0;       // query blocks of the call
  int64_t key_blocks = 0;
  int heads_per_pass = 0;
  float* pooled_q = nullptr;
  float* pooled_k = nullptr;
  int64_t workspace_bytes = 0;
};

absl::StatusOr<BlockSparsePlan> PlanBlockSparse(const PrefillShape& s,
                                                const kernels::BlockSparseParams& p, void* base) {
  if (p.block < 1) {
    return absl::InvalidArgumentError("parameter 'block' of method block_sparse must be >= 1");
  }
  BlockSparsePlan plan;
  plan.nb = (s.lk + p.block - 1) / p.block;
  if (p.block_budget > plan.nb) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameter 'block_budget' of method block_sparse is ", p.block_budget,
        ", larger than the sequence's number of blocks of ", p.block, " (", plan.nb, ")"));
  }
  if (s.q_offset % p.block != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("block_sparse selection: the queries' first position (", s.q_offset,
                     ") must be a multiple of parameter 'block' (", p.block, ") on the GPU"));
  }
  plan.first_qb = s.q_offset / p.block;
  plan.nqb = (s.lq + p.block - 1) / p.block;
  for (int64_t b = 0; b < plan.nqb; ++b) {
    const int64_t qb = plan.first_qb + b;
    plan.key_blocks +=
        std::min(qb + 1, std::max<int64_t>(p.block_budget, std::min<int64_t>(qb + 1, 3)));
  }
  plan.key_blocks *= s.hq;
  plan.heads_per_pass = select_internal::HeadsPerPass(s.group, s.d, plan.first_qb + plan.nqb);
  if (plan.heads_per_pass < 1) {
    return absl::InvalidArgumentError(absl::StrCat("block_sparse selection: ", plan.nb,
                                                   " key blocks do not fit in shared memory; use a "
                                                   "larger 'block'"));
  }
  WorkspaceCarver carver(base);
  plan.pooled_q = carver.Take<float>(int64_t{s.hq} * plan.nqb * s.d);
  plan.pooled_k = carver.Take<float>(int64_t{s.hkv} * plan.nb * s.d);
  plan.workspace_bytes = carver.used();
  return plan;
}

}  // namespace

absl::StatusOr<SelectionSizes> BlockSparseSelectSizes(const AttentionParams& attn,
                                                      const kernels::BlockSparseParams& p) {
  SF_ASSIGN_OR_RETURN(PrefillShape s, CheckPrefillShape(attn, "block_sparse"));
  SF_ASSIGN_OR_RETURN(BlockSparsePlan plan, PlanBlockSparse(s, p, nullptr));
  SelectionSizes z;
  z.workspace_bytes = plan.workspace_bytes;
  z.block_offsets = int64_t{s.hq} * plan.nqb + 1;
  z.key_blocks = plan.key_blocks;
  return z;
}

absl::StatusOr<BlockSelection> SelectBlockSparse(const AttentionParams& attn,
                                                 const kernels::BlockSparseParams& p,
                                                 const SelectionBuffers& out) {
  SF_ASSIGN_OR_RETURN(PrefillShape s, CheckPrefillShape(attn, "block_sparse"));
  SF_ASSIGN_OR_RETURN(BlockSparsePlan plan, PlanBlockSparse(s, p, out.workspace));
  SF_RETURN_IF_ERROR(CheckCapacity("block_sparse", "workspace", out.workspace, out.workspace_bytes,
                                   plan.workspace_bytes));
  SF_RETURN_IF_ERROR(CheckCapacity("block_sparse", "key_blocks", out.key_blocks,
                                   out.key_blocks_capacity, plan.key_blocks));
  if (out.block_offsets == nullptr) {
    return absl::InvalidArgumentError("block_sparse selection: block_offsets must be given");
  }
  select_internal::PoolRowsArgs pool;
  pool.src = attn.k;
  pool.head_stride = attn.kv_head_stride;
  pool.row_stride = attn.kv_row_stride;
  pool.heads = s.hkv;
  pool.dim = s.d;
  pool.start = 0;
  pool.block = p.block;
  pool.end = s.lk;
  pool.blocks = static_cast<int>(plan.nb);
  pool.out = plan.pooled_k;
  SF_RETURN_IF_ERROR(select_internal::LaunchPoolRows(pool, attn.stream));
  pool.src = attn.q;
  pool.head_stride = attn.q_head_stride;
  pool.row_stride = attn.q_row_stride;
  pool.heads = s.hq;
  pool.end = s.lq;
  pool.blocks = static_cast<int>(plan.nqb);
  pool.out = plan.pooled_q;
  SF_RETURN_IF_ERROR(select_internal::LaunchPoolRows(pool, attn.stream));
  select_internal::BlockSparseOffsetsKernel<<<(s.hq + 127) / 128, 128, 0, attn.stream>>>(
      s.hq, static_cast<int>(plan.first_qb), static_cast<int>(plan.nqb),
      static_cast<int>(p.block_budget), out.block_offsets);
  SF_RETURN_IF_ERROR(CudaStatus(cudaGetLastError(), "block_sparse offsets kernel"));
  select_internal::BlockSparseArgs args;
  args.pooled_q = plan.pooled_q;
  args.pooled_k = plan.pooled_k;
  args.nqb = static_cast<int>(plan.nqb);
  args.nb = static_cast<int>(plan.nb);  // = first_qb + nqb: the last query block's row
  args.first_qb = static_cast<int>(plan.first_qb);
  args.group = s.group;
  args.heads_per_pass = plan.heads_per_pass;
  args.dim = s.d;
  args.budget = static_cast<int>(p.block_budget);
  args.offsets = out.block_offsets;
  args.key_blocks = out.key_blocks;
  switch (s.d) {
    case 64:
      SF_RETURN_IF_ERROR(select_internal::LaunchBlockSparseSelect<64>(args, s.hkv, attn.stream));
      break;
    case 128:
      SF_RETURN_IF_ERROR(select_internal::LaunchBlockSparseSelect<128>(args, s.hkv, attn.stream));
      break;
    default:
      SF_RETURN_IF_ERROR(select_internal::LaunchBlockSparseSelect<256>(args, s.hkv, attn.stream));
  }
  BlockSelection sel;
  sel.heads.count = s.hq;
  sel.block = static_cast<int32_t>(p.block);
  sel.num_query_blocks = static_cast<int32_t>(plan.nqb);
  sel.offsets = out.block_offsets;
  sel.key_blocks = out.key_blocks;
  return sel;
}

}  // namespace sf::cuda
