// Decode attention entry points (decode.h): argument checks, the split plan, the combine
// kernel and the dispatch to the instantiated split-KV kernels.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cuda/attention/decode.h"
#include "kernels/cuda/attention/decode_split_kv.cuh"
#include "kernels/cuda/attention/pdl.cuh"
#include "kernels/cuda/check.h"

namespace sf::cuda {
namespace {

using decode_internal::DenseRows;
using decode_internal::GatheredRows;
using decode_internal::PageRows;
using decode_internal::SplitKvArgs;

// Splits never go below this many rows (two tiles per warp) nor above this count.
constexpr int64_t kMinChunk = 2 * decode_internal::kWarps * decode_internal::kTileRows;
constexpr int32_t kMaxSplits = 1024;

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

absl::Status CheckDecodeParams(const AttentionParams& p) {
  auto bad = [](const char* field, const auto&... why) {
    return absl::InvalidArgumentError(absl::StrCat("decode attention: ", field, " ", why...));
  };
  if (p.dtype != AttnDType::kBf16) return bad("dtype", "must be bf16");
  if (p.q == nullptr || p.k == nullptr || p.v == nullptr || p.out == nullptr) {
    return bad("q, k, v and out", "must all be device pointers");
  }
  if (p.num_queries != 1) {
    return bad("num_queries", "is ", p.num_queries, "; decode takes one query per sequence");
  }
  if (p.num_kv_heads < 1 || p.num_q_heads < 1 || p.num_q_heads % p.num_kv_heads != 0) {
    return bad("num_q_heads", "(", p.num_q_heads, ") must be a positive multiple of num_kv_heads (",
               p.num_kv_heads, ")");
  }
  if (p.head_dim != 64 && p.head_dim != 128 && p.head_dim != 256) {
    return bad("head_dim", "is ", p.head_dim, "; decode supports 64, 128 and 256");
  }
  if (p.batch < 1) return bad("batch", "is ", p.batch, "; must be >= 1");
  if (p.max_kv_length < 0 || p.max_kv_length > (int64_t{1} << 31) - 1) {
    return bad("max_kv_length", "is ", p.max_kv_length, "; must be in [0, 2^31)");
  }
  if (!Aligned16(p.k) || !Aligned16(p.v) || p.kv_row_stride % 8 != 0 || p.kv_head_stride % 8 != 0 ||
      p.kv_batch_stride % 8 != 0) {
    return bad("k, v, kv_row_stride, kv_head_stride, kv_batch_stride",
               "must be 16-byte aligned (strides multiples of 8 elements)");
  }
  if (p.kv_row_stride < p.head_dim) {
    return bad("kv_row_stride", "(", p.kv_row_stride, ") is below head_dim (", p.head_dim, ")");
  }
  return absl::OkStatus();
}

int MultiprocessorCount() {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    return 132;
  }
  return sms;
}

int BlocksPerSm(int head_dim) {
  // Every source's kernel has the dense one's resources within a few registers; one
  // figure per head dim (and kernel variant) keeps Plan* and the launch identical.
  return head_dim == 64    ? decode_internal::SplitKvBlocksPerSm<64, DenseRows>()
         : head_dim == 128 ? decode_internal::SplitKvBlocksPerSm<128, DenseRows>()
                           : decode_internal::SplitKvBlocksPerSm<256, DenseRows>();
}

// Floats of (max, sum) pairs before the partial outputs, rounded up to 256 bytes.
int64_t PartMlFloats(const AttentionParams& p, int64_t splits) {
  return (2 * static_cast<int64_t>(p.batch) * p.num_q_heads * splits + 63) / 64 * 64;
}

// One wave of CTAs over the machine, each split at least kMinChunk rows.
DecodePlan MakePlan(const AttentionParams& p, int64_t units, int64_t max_rows) {
  const int64_t slots = static_cast<int64_t>(BlocksPerSm(p.head_dim)) * MultiprocessorCount();
  const int64_t want = std::clamp<int64_t>(slots / (p.batch * units), 1, kMaxSplits);
  const int64_t step = decode_internal::kWarps * decode_internal::kTileRows;
  int64_t chunk = (max_rows + want - 1) / want;
  chunk = std::max(kMinChunk, (chunk + step - 1) / step * step);
  DecodePlan plan;
  plan.chunk = chunk;
  plan.num_splits = static_cast<int32_t>(std::max<int64_t>(1, (max_rows + chunk - 1) / chunk));
  plan.workspace_bytes =
      plan.num_splits > 1
          ? (PartMlFloats(p, plan.num_splits) +
             static_cast<int64_t>(p.batch) * p.num_q_heads * plan.num_splits * p.head_dim) *
                static_cast<int64_t>(sizeof(float))
          : 0;
  return plan;
}

int64_t DenseUnits(const AttentionParams& p) {
  const int64_t group = p.num_q_heads / p.num_kv_heads;
  return p.num_kv_heads *
         ((group + decode_internal::kHeadsPerUnit - 1) / decode_internal::kHeadsPerUnit);
}

absl::StatusOr<bool> PerQueryHead(const AttentionParams& p, const ListHeads& heads) {
  if (heads.count == p.num_kv_heads) return false;
  if (heads.count == p.num_q_heads) return true;
  return absl::InvalidArgumentError(absl::StrCat(
      "decode attention: selection heads.count is ", heads.count, "; must be num_q_heads (",
      p.num_q_heads, ") or num_kv_heads (", p.num_kv_heads, ")"));
}

SplitKvArgs MakeArgs(const AttentionParams& p, const DecodePlan& plan, bool per_query_head) {
  SplitKvArgs a;
  a.q = static_cast<const __nv_bfloat16*>(p.q);
  a.q_batch_stride = p.q_batch_stride;
  a.q_head_stride = p.q_head_stride;
  a.k = static_cast<const __nv_bfloat16*>(p.k);
  a.v = static_cast<const __nv_bfloat16*>(p.v);
  a.k_seqs = p.k_seqs;
  a.v_seqs = p.v_seqs;
  a.kv_batch_stride = p.kv_batch_stride;
  a.kv_head_stride = p.kv_head_stride;
  a.kv_row_stride = p.kv_row_stride;
  a.num_q_heads = p.num_q_heads;
  a.num_kv_heads = p.num_kv_heads;
  a.group = p.num_q_heads / p.num_kv_heads;
  a.per_query_head = per_query_head;
  a.head_blocks = (a.group + decode_internal::kHeadsPerUnit - 1) / decode_internal::kHeadsPerUnit;
  a.scale_log2 = p.softmax_scale * 1.4426950408889634f;
  a.chunk = plan.chunk;
  a.num_splits = plan.num_splits;
  a.out = static_cast<__nv_bfloat16*>(p.out);
  a.out_batch_stride = p.out_batch_stride;
  a.out_head_stride = p.out_head_stride;
  a.lse = p.lse;
  if (plan.num_splits > 1) {
    a.part_ml = static_cast<float*>(p.workspace);
    a.part_o = a.part_ml + PartMlFloats(p, plan.num_splits);
  }
  return a;
}

// Merges the splits of one (query head, sequence): weights 2^(m_s - max), skipping
// splits that saw no row (their partial output was never written). 8 warps: each takes
// every 8th split with all its loads in flight, lanes over dims; then a sum over warps.
constexpr int kCombineThreads = 256;
template <int D>
__global__ void __launch_bounds__(kCombineThreads) CombineSplitsKernel(const SplitKvArgs a) {
  pdl_internal::PdlEnter();
  constexpr int kWarpsC = kCombineThreads / 32, kPer = D / 32;
  __shared__ float weight[kMaxSplits];
  __shared__ float partial[kWarpsC][D];
  __shared__ float red_m[kWarpsC], red_l[kWarpsC];
  const int hq = blockIdx.x, b = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t slot0 = (static_cast<int64_t>(b) * a.num_q_heads + hq) * a.num_splits;
  const float2* ml = reinterpret_cast<const float2*>(a.part_ml) + slot0;
  float mx = -INFINITY;
  for (int s = threadIdx.x; s < a.num_splits; s += kCombineThreads) {
    const float2 v = ml[s];
    if (v.y > 0.0f) mx = fmaxf(mx, v.x);
  }
  for (int o = 16; o >= 1; o /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if (lane == 0) red_m[warp] = mx;
  __syncthreads();
  mx = red_m[0];
  for (int k = 1; k < kWarpsC; ++k) mx = fmaxf(mx, red_m[k]);
  float l = 0.0f;
  for (int s = threadIdx.x; s < a.num_splits; s += kCombineThreads) {
    const float2 v = ml[s];
    const float wgt = v.y > 0.0f ? exp2f(v.x - mx) : 0.0f;
    weight[s] = wgt;
    l += wgt * v.y;
  }
  for (int o = 16; o >= 1; o /= 2) l += __shfl_xor_sync(0xffffffffu, l, o);
  if (lane == 0) red_l[warp] = l;
  __syncthreads();
  l = 0.0f;
  for (int k = 0; k < kWarpsC; ++k) l += red_l[k];
  float acc[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) acc[i] = 0.0f;
#pragma unroll 4
  for (int s = warp; s < a.num_splits; s += kWarpsC) {
    // Unwritten partials (weight 0) may hold anything: select, never multiply, them.
    const float wgt = weight[s];
    const float* src = a.part_o + (slot0 + s) * D + lane * kPer;
    float x[kPer];
#pragma unroll
    for (int i = 0; i < kPer; i += 2) {
      const float2 v = *reinterpret_cast<const float2*>(src + i);  // 256-byte aligned rows
      x[i] = v.x;
      x[i + 1] = v.y;
    }
#pragma unroll
    for (int i = 0; i < kPer; ++i) acc[i] += wgt > 0.0f ? wgt * x[i] : 0.0f;
  }
#pragma unroll
  for (int i = 0; i < kPer; ++i) partial[warp][lane * kPer + i] = acc[i];
  __syncthreads();
  for (int d = threadIdx.x; d < D; d += kCombineThreads) {
    float o = 0.0f;
#pragma unroll
    for (int k = 0; k < kWarpsC; ++k) o += partial[k][d];
    a.out[b * a.out_batch_stride + hq * a.out_head_stride + d] =
        __float2bfloat16_rn(l > 0.0f ? o / l : 0.0f);
  }
  if (threadIdx.x == 0 && a.lse != nullptr) {
    a.lse[b * a.num_q_heads + hq] = l > 0.0f ? (mx + log2f(l)) * 0.69314718055994531f : -INFINITY;
  }
}

template <int D, class Source>
absl::Status RunSplitKv(const AttentionParams& p, const DecodePlan& plan, int64_t units,
                        bool per_query_head, const Source& source) {
  if (plan.workspace_bytes > 0 &&
      (p.workspace == nullptr || p.workspace_bytes < plan.workspace_bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "decode attention: workspace_bytes is ", p.workspace_bytes, "; this call needs ",
        plan.workspace_bytes, " (see PlanDenseDecode / PlanSparseDecode)"));
  }
  const SplitKvArgs args = MakeArgs(p, plan, per_query_head);
  const dim3 grid(plan.num_splits, static_cast<unsigned>(units), p.batch);
  SF_CUDA_RETURN_IF_ERROR(
      (decode_internal::LaunchSplitKv<D, Source>(args, source, grid, p.stream)));
  if (plan.num_splits > 1) {
    SF_CUDA_RETURN_IF_ERROR(pdl_internal::LaunchPdl(CombineSplitsKernel<D>,
                                                    dim3(p.num_q_heads, p.batch),
                                                    dim3(kCombineThreads), 0, p.stream, args));
  }
  return absl::OkStatus();
}

template <class Source>
absl::Status RunForHeadDim(const AttentionParams& p, const DecodePlan& plan, int64_t units,
                           bool per_query_head, const Source& source) {
  switch (p.head_dim) {
    case 64:
      return RunSplitKv<64>(p, plan, units, per_query_head, source);
    case 128:
      return RunSplitKv<128>(p, plan, units, per_query_head, source);
    default:
      return RunSplitKv<256>(p, plan, units, per_query_head, source);
  }
}

absl::Status CheckList(const char* what, const void* offsets, const void* items) {
  if (offsets == nullptr || items == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("decode attention: ", what, " offsets and items must be device pointers"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DecodePlan> PlanDenseDecode(const AttentionParams& p) {
  SF_RETURN_IF_ERROR(CheckDecodeParams(p));
  return MakePlan(p, DenseUnits(p), p.max_kv_length);
}

absl::Status DenseDecode(const AttentionParams& p) {
  SF_RETURN_IF_ERROR(CheckDecodeParams(p));
  const DecodePlan plan = MakePlan(p, DenseUnits(p), p.max_kv_length);
  DenseRows source;
  source.lengths = p.kv_lengths;
  source.num_kv_heads = p.num_kv_heads;
  source.max_len = p.max_kv_length;
  return RunForHeadDim(p, plan, DenseUnits(p), /*per_query_head=*/false, source);
}

absl::StatusOr<DecodePlan> PlanSparseDecode(const AttentionParams& p, const ListHeads& heads,
                                            int64_t max_selected) {
  SF_RETURN_IF_ERROR(CheckDecodeParams(p));
  SF_ASSIGN_OR_RETURN(const bool per_query_head, PerQueryHead(p, heads));
  if (max_selected < 0 || max_selected > (int64_t{1} << 31) - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("decode attention: max_selected is ", max_selected, "; must be in [0, 2^31)"));
  }
  return MakePlan(p, per_query_head ? p.num_q_heads : DenseUnits(p), max_selected);
}

absl::Status PagedDecode(const AttentionParams& p, const PageSelection& pages,
                         int64_t max_selected) {
  SF_ASSIGN_OR_RETURN(const DecodePlan plan, PlanSparseDecode(p, pages.heads, max_selected));
  SF_RETURN_IF_ERROR(CheckList("page selection", pages.offsets, pages.pages));
  if (pages.page < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("decode attention: page selection page is ", pages.page, "; must be >= 1"));
  }
  const bool per_query_head = pages.heads.count != p.num_kv_heads;
  PageRows source;
  source.lengths = p.kv_lengths;
  source.num_kv_heads = p.num_kv_heads;
  source.max_len = p.max_kv_length;
  source.lists_per_batch = pages.heads.count;
  source.page = pages.page;
  source.offsets = pages.offsets;
  source.pages = pages.pages;
  return RunForHeadDim(p, plan, per_query_head ? p.num_q_heads : DenseUnits(p), per_query_head,
                       source);
}

absl::Status GatheredDecode(const AttentionParams& p, const RowSelection& rows,
                            int64_t max_selected) {
  SF_ASSIGN_OR_RETURN(const DecodePlan plan, PlanSparseDecode(p, rows.heads, max_selected));
  SF_RETURN_IF_ERROR(CheckList("row selection", rows.offsets, rows.rows));
  const bool per_query_head = rows.heads.count != p.num_kv_heads;
  GatheredRows source;
  source.lengths = p.kv_lengths;
  source.num_kv_heads = p.num_kv_heads;
  source.max_len = p.max_kv_length;
  source.lists_per_batch = rows.heads.count;
  source.offsets = rows.offsets;
  source.rows = rows.rows;
  return RunForHeadDim(p, plan, per_query_head ? p.num_q_heads : DenseUnits(p), per_query_head,
                       source);
}

}  // namespace sf::cuda
