// flexprefill's original variant on the GPU: the line mass of the last `block` queries,
// pooled keys and queries, one CTA per head for the Jensen-Shannon classification, the
// study's line choice for the other heads, and one CTA per (query block, query-aware head)
// for the pooled-estimate cover of key blocks. Output: a MixedSelection.
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
#include "kernels/cuda/attention/select_line_mass.cuh"
#include "kernels/cuda/attention/select_lines.cuh"
#include "kernels/cuda/check.h"

namespace sf::cuda {
namespace select_internal {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int64_t kFlexSinkColumns = 4;
constexpr int64_t kFlexLocalDiagonals = 64;

template <class T>
__device__ T BlockSum(T v, T* scratch, T* total) {
  BlockExclusiveSum<kThreads>(v, scratch, total);
  return *total;
}

__device__ float BlockMax(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int off = 16; off > 0; off /= 2) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, off));
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float m = -INFINITY;
  for (int w = 0; w < kWarps; ++w) m = fmaxf(m, scratch[w]);
  __syncthreads();
  return m;
}

// scores[kb] = (pq . pooled_k[kb]) * scale for kb < cols, one warp per key block.
template <int D>
__device__ void PooledScores(const float* pq, const float* pooled_k, int cols, float scale,
                             float* scores) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int kb = warp; kb < cols; kb += kWarps) {
    const float* kr = pooled_k + int64_t{kb} * D;
    float dot = 0.f;
#pragma unroll
    for (int x = 0; x < D / 32; ++x) dot = fmaf(pq[lane + 32 * x], kr[lane + 32 * x], dot);
    for (int off = 16; off > 0; off /= 2) dot += __shfl_xor_sync(kFullMask, dot, off);
    if (lane == 0) scores[kb] = dot * scale;
  }
}

// In place: x[i] = exp(x[i] - max) / sum over i < n (the sum in double).
__device__ void SoftmaxInPlace(float* x, int n, float* fscratch, double* dscratch, double* dtotal) {
  float m = -INFINITY;
  for (int i = threadIdx.x; i < n; i += kThreads) m = fmaxf(m, x[i]);
  m = BlockMax(m, fscratch);
  double local = 0;
  for (int i = threadIdx.x; i < n; i += kThreads) {
    x[i] = expf(x[i] - m);
    local += x[i];
  }
  const double z = BlockSum(local, dscratch, dtotal);
  for (int i = threadIdx.x; i < n; i += kThreads) x[i] = static_cast<float>(x[i] / z);
  __syncthreads();
}

struct ClassifyArgs {
  const float* columns;   // [hq][lk] line mass of the last est_q queries
  const float* pooled_q;  // [hq][D] mean of those queries
  const float* pooled_k;  // [hkv][nb][D]
  int64_t lk;
  int block, nb, group;
  float scale;
  double tau;
  int32_t* head_kinds;
};

// True (sum-pooled column mass) and estimated (softmax of pooled scores) block
// distributions of one head; Jensen-Shannon distance < tau -> query-aware (kBlocks).
template <int D>
__global__ void __launch_bounds__(kThreads) ClassifyHeadsKernel(ClassifyArgs a) {
  __shared__ float fscratch[32];
  __shared__ double dscratch[32];
  __shared__ double dtotal;
  __shared__ float pq[D];
  extern __shared__ __align__(16) float dyn[];  // truth[nb], est[nb]
  float* truth = dyn;
  float* est = dyn + a.nb;
  const int h = blockIdx.x;
  for (int x = threadIdx.x; x < D; x += kThreads) pq[x] = a.pooled_q[int64_t{h} * D + x];
  const float* cols = a.columns + int64_t{h} * a.lk;
  double local = 0;
  for (int kb = threadIdx.x; kb < a.nb; kb += kThreads) {
    float s = 0.f;
    const int64_t block_end = int64_t{kb + 1} * a.block;
    const int64_t end = block_end < a.lk ? block_end : a.lk;
    for (int64_t j = int64_t{kb} * a.block; j < end; ++j) s += cols[j];
    truth[kb] = s;
    local += s;
  }
  __syncthreads();
  const double tz = BlockSum(local, dscratch, &dtotal);
  for (int kb = threadIdx.x; kb < a.nb; kb += kThreads)
    truth[kb] = static_cast<float>(truth[kb] / tz);
  PooledScores<D>(pq, a.pooled_k + int64_t{h / a.group} * a.nb * D, a.nb, a.scale, est);
  __syncthreads();
  SoftmaxInPlace(est, a.nb, fscratch, dscratch, &dtotal);
  double js = 0;
  for (int kb = threadIdx.x; kb < a.nb; kb += kThreads) {
    const double p = truth[kb], q = est[kb], m = 0.5 * (p + q);
    if (p > 0) js += 0.5 * p * log(p / m);
    if (q > 0) js += 0.5 * q * log(q / m);
  }
  const double total = BlockSum(js, dscratch, &dtotal);
  if (threadIdx.x == 0) {
    a.head_kinds[h] = sqrt(fmax(total, 0.0)) < a.tau
                          ? static_cast<int32_t>(HeadSelectionKind::kBlocks)
                          : static_cast<int32_t>(HeadSelectionKind::kLines);
  }
}

struct QueryAwareArgs {
  const float* pooled_q;  // [hq][nqb][D]
  const float* pooled_k;  // [hkv][nb][D]
  const int32_t* head_kinds;
  int first_qb, nqb, nb, group, min_blocks;
  float scale;
  double gamma;
  int32_t* staging;  // [hq][nqb][nb]
  int32_t* counts;   // [hq][nqb]
};

template <int D>
__global__ void __launch_bounds__(kThreads) QueryAwareBlocksKernel(QueryAwareArgs a) {
  __shared__ TopKShared sm;
  __shared__ CoverShared cs;
  __shared__ float fscratch[32];
  __shared__ double dscratch[32];
  __shared__ double dtotal;
  __shared__ float pq[D];
  extern __shared__ __align__(16) float prob[];  // [qb + 1]
  const int b = blockIdx.x, h = blockIdx.y;
  const int64_t list = int64_t{h} * a.nqb + b;
  if (a.head_kinds[h] != static_cast<int32_t>(HeadSelectionKind::kBlocks)) {
    if (threadIdx.x == 0) a.counts[list] = 0;
    return;
  }
  const int qb = a.first_qb + b, cols = qb + 1;
  for (int x = threadIdx.x; x < D; x += kThreads) pq[x] = a.pooled_q[list * D + x];
  __syncthreads();
  PooledScores<D>(pq, a.pooled_k + int64_t{h / a.group} * a.nb * D, cols, a.scale, prob);
  __syncthreads();
  SoftmaxInPlace(prob, cols, fscratch, dscratch, &dtotal);
  int k = cols;
  if (a.gamma < 1.0) {
    const int cover =
        CoverCountDevice<kThreads, false>([&](int i) { return prob[i]; }, cols, a.gamma, sm, cs);
    k = min(cols, max(max(cover, a.min_blocks), qb >= 1 ? 2 : 1));
  }
  SelectTopKSorted<kThreads>(
      [&](int i) { return (i == 0 || i == qb) ? kForcedKey : OrderedKey(prob[i]); }, cols, k, sm,
      a.staging + list * a.nb);
  if (threadIdx.x == 0) a.counts[list] = k;
}

struct OriginalPlan {
  int64_t est_q = 0, nb = 0, first_qb = 0, nqb = 0, key_blocks = 0;
  LineMassBuffers mass;
  float* pooled_k = nullptr;
  float* pooled_q_est = nullptr;
  float* pooled_q_blocks = nullptr;
  int32_t* column_staging = nullptr;
  int32_t* diagonal_staging = nullptr;
  int32_t* line_counts = nullptr;  // [2][hq]
  int32_t* block_staging = nullptr;
  int32_t* block_counts = nullptr;
  int64_t workspace_bytes = 0;
};

absl::StatusOr<OriginalPlan> PlanOriginal(const PrefillShape& s,
                                          const kernels::FlexPrefillParams& p, void* base) {
  if (!p.original) {
    return absl::InvalidArgumentError(
        "flexprefill selection: SelectFlexPrefillMixed is for variant=original; use "
        "SelectFlexPrefillLines");
  }
  if (p.block < 1 || p.min_budget < 0) {
    return absl::InvalidArgumentError(
        "parameters 'block' (>= 1) and 'min_budget' (>= 0) of method flexprefill");
  }
  if (s.q_offset % p.block != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("flexprefill selection: the queries' first position (", s.q_offset,
                     ") must be a multiple of parameter 'block' (", p.block, ") on the GPU"));
  }
  OriginalPlan plan;
  plan.est_q = std::min<int64_t>(p.block, s.lq);
  plan.nb = (s.lk + p.block - 1) / p.block;
  plan.first_qb = s.q_offset / p.block;
  plan.nqb = (s.lq + p.block - 1) / p.block;
  if (plan.nb * 8 > 200 * 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("flexprefill selection: ", plan.nb, " key blocks of ", p.block,
                     " do not fit in shared memory; use a larger 'block'"));
  }
  for (int64_t b = 0; b < plan.nqb; ++b) plan.key_blocks += plan.first_qb + b + 1;
  plan.key_blocks *= s.hq;
  WorkspaceCarver carver(base);
  plan.mass = LineMassWorkspace(s, plan.est_q, &carver);
  plan.pooled_k = carver.Take<float>(int64_t{s.hkv} * plan.nb * s.d);
  plan.pooled_q_est = carver.Take<float>(int64_t{s.hq} * s.d);
  plan.pooled_q_blocks = carver.Take<float>(int64_t{s.hq} * plan.nqb * s.d);
  plan.column_staging = carver.Take<int32_t>(int64_t{s.hq} * s.lk);
  plan.diagonal_staging = carver.Take<int32_t>(int64_t{s.hq} * s.lk);
  plan.line_counts = carver.Take<int32_t>(2 * int64_t{s.hq});
  plan.block_staging = carver.Take<int32_t>(int64_t{s.hq} * plan.nqb * plan.nb);
  plan.block_counts = carver.Take<int32_t>(int64_t{s.hq} * plan.nqb);
  plan.workspace_bytes = carver.used();
  return plan;
}

template <int D>
absl::Status LaunchClassifyAndBlocks(const ClassifyArgs& c, const QueryAwareArgs& q, int hq,
                                     cudaStream_t stream) {
  const int class_bytes = 8 * c.nb, prob_bytes = 4 * q.nb;
  SF_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(
      ClassifyHeadsKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, class_bytes));
  ClassifyHeadsKernel<D><<<hq, kThreads, class_bytes, stream>>>(c);
  SF_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  SF_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(
      QueryAwareBlocksKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, prob_bytes));
  QueryAwareBlocksKernel<D><<<dim3(q.nqb, hq), kThreads, prob_bytes, stream>>>(q);
  return CudaStatus(cudaGetLastError(), "flexprefill classification / block kernels");
}

}  // namespace

absl::StatusOr<SelectionSizes> FlexPrefillOriginalSizes(const AttentionParams& attn,
                                                        const kernels::FlexPrefillParams& p) {
  SF_ASSIGN_OR_RETURN(PrefillShape s, CheckPrefillShape(attn, "flexprefill"));
  SF_ASSIGN_OR_RETURN(OriginalPlan plan, PlanOriginal(s, p, nullptr));
  SelectionSizes z;
  z.workspace_bytes = plan.workspace_bytes;
  z.column_offsets = z.diagonal_offsets = s.hq + 1;
  z.columns = z.diagonals = int64_t{s.hq} * s.lk;
  z.block_offsets = int64_t{s.hq} * plan.nqb + 1;
  z.key_blocks = plan.key_blocks;
  z.head_kinds = s.hq;
  return z;
}

absl::StatusOr<MixedSelection> SelectFlexPrefillOriginal(const AttentionParams& attn,
                                                         const kernels::FlexPrefillParams& p,
                                                         const SelectionBuffers& out) {
  SF_ASSIGN_OR_RETURN(PrefillShape s, CheckPrefillShape(attn, "flexprefill"));
  SF_ASSIGN_OR_RETURN(OriginalPlan plan, PlanOriginal(s, p, out.workspace));
  const char* m = "flexprefill";
  SF_RETURN_IF_ERROR(
      CheckCapacity(m, "workspace", out.workspace, out.workspace_bytes, plan.workspace_bytes));
  SF_RETURN_IF_ERROR(
      CheckCapacity(m, "columns", out.columns, out.columns_capacity, int64_t{s.hq} * s.lk));
  SF_RETURN_IF_ERROR(
      CheckCapacity(m, "diagonals", out.diagonals, out.diagonals_capacity, int64_t{s.hq} * s.lk));
  SF_RETURN_IF_ERROR(
      CheckCapacity(m, "key_blocks", out.key_blocks, out.key_blocks_capacity, plan.key_blocks));
  if (out.column_offsets == nullptr || out.diagonal_offsets == nullptr ||
      out.block_offsets == nullptr || out.head_kinds == nullptr) {
    return absl::InvalidArgumentError(
        "flexprefill selection: column_offsets, diagonal_offsets, block_offsets and "
        "head_kinds must be given");
  }
  SF_RETURN_IF_ERROR(LaunchLineMass(attn, s, plan.est_q, plan.mass));
  PoolRowsArgs pool;
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
  SF_RETURN_IF_ERROR(LaunchPoolRows(pool, attn.stream));
  pool.src = attn.q;
  pool.head_stride = attn.q_head_stride;
  pool.row_stride = attn.q_row_stride;
  pool.heads = s.hq;
  pool.end = s.lq;
  pool.blocks = static_cast<int>(plan.nqb);
  pool.out = plan.pooled_q_blocks;
  SF_RETURN_IF_ERROR(LaunchPoolRows(pool, attn.stream));
  pool.start = s.lq - plan.est_q;
  pool.block = plan.est_q;
  pool.blocks = 1;
  pool.out = plan.pooled_q_est;
  SF_RETURN_IF_ERROR(LaunchPoolRows(pool, attn.stream));

  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.d)));
  ClassifyArgs c;
  c.columns = plan.mass.columns;
  c.pooled_q = plan.pooled_q_est;
  c.pooled_k = plan.pooled_k;
  c.lk = s.lk;
  c.block = static_cast<int>(p.block);
  c.nb = static_cast<int>(plan.nb);
  c.group = s.group;
  c.scale = scale;
  c.tau = p.tau;
  c.head_kinds = out.head_kinds;
  QueryAwareArgs q;
  q.pooled_q = plan.pooled_q_blocks;
  q.pooled_k = plan.pooled_k;
  q.head_kinds = out.head_kinds;
  q.first_qb = static_cast<int>(plan.first_qb);
  q.nqb = static_cast<int>(plan.nqb);
  q.nb = static_cast<int>(plan.nb);
  q.group = s.group;
  q.min_blocks = static_cast<int>((p.min_budget + p.block - 1) / p.block);
  q.scale = scale;
  q.gamma = p.gamma;
  q.staging = plan.block_staging;
  q.counts = plan.block_counts;
  switch (s.d) {
    case 64:
      SF_RETURN_IF_ERROR(LaunchClassifyAndBlocks<64>(c, q, s.hq, attn.stream));
      break;
    case 128:
      SF_RETURN_IF_ERROR(LaunchClassifyAndBlocks<128>(c, q, s.hq, attn.stream));
      break;
    default:
      SF_RETURN_IF_ERROR(LaunchClassifyAndBlocks<256>(c, q, s.hq, attn.stream));
  }
  SF_RETURN_IF_ERROR(LaunchPackBlockLists(plan.block_counts, plan.block_staging,
                                          int64_t{s.hq} * plan.nqb, static_cast<int>(plan.nb),
                                          out.block_offsets, out.key_blocks, attn.stream));

  LineTopKArgs args;
  args.n = static_cast<int>(s.lk);
  args.columns = plan.mass.columns;
  args.diagonals = plan.mass.diagonals;
  args.forced_columns = static_cast<int>(std::min<int64_t>(kFlexSinkColumns, s.lk));
  args.forced_diagonals = static_cast<int>(std::min<int64_t>(kFlexLocalDiagonals, s.lk));
  args.k_columns = args.k_diagonals = static_cast<int>(std::min<int64_t>(p.min_budget, s.lk));
  args.cover_target = p.gamma * static_cast<double>(plan.est_q);
  args.cover_all = p.gamma >= 1.0;
  args.fixed_k = false;
  args.column_lists = plan.column_staging;
  args.diagonal_lists = plan.diagonal_staging;
  args.column_offsets = out.column_offsets;
  args.diagonal_offsets = out.diagonal_offsets;
  args.column_counts = plan.line_counts;
  args.diagonal_counts = plan.line_counts + s.hq;
  args.head_kinds = out.head_kinds;
  SF_RETURN_IF_ERROR(LaunchLineTopK(args, s.hq, attn.stream));
  SF_RETURN_IF_ERROR(LaunchPackLists(args, s.hq, out.columns, out.diagonals, attn.stream));

  MixedSelection sel;
  sel.lines.heads.count = s.hq;
  sel.lines.column_offsets = out.column_offsets;
  sel.lines.columns = out.columns;
  sel.lines.diagonal_offsets = out.diagonal_offsets;
  sel.lines.diagonals = out.diagonals;
  sel.blocks.heads.count = s.hq;
  sel.blocks.block = static_cast<int32_t>(p.block);
  sel.blocks.num_query_blocks = static_cast<int32_t>(plan.nqb);
  sel.blocks.offsets = out.block_offsets;
  sel.blocks.key_blocks = out.key_blocks;
  sel.head_kinds = out.head_kinds;
  return sel;
}

}  // namespace select_internal

absl::StatusOr<MixedSelection> SelectFlexPrefillMixed(const AttentionParams& attn,
                                                      const kernels::FlexPrefillParams& p,
                                                      const SelectionBuffers& out) {
  return select_internal::SelectFlexPrefillOriginal(attn, p, out);
}

}  // namespace sf::cuda
