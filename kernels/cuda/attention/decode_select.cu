// Streaming and oracle_topk row selections for sparse decode (decode_select.h).
#include <cuda_bf16.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cuda/attention/block_topk.cuh"
#include "kernels/cuda/attention/decode_select.h"
#include "kernels/cuda/check.h"

namespace sf::cuda {
namespace {

constexpr int kSelectThreads = 1024;
constexpr int kScoreThreads = 128;

struct Lengths {
  const int32_t* lengths = nullptr;
  int64_t max_len = 0;
  int32_t num_kv_heads = 0;
  __device__ int64_t Of(int b, int g) const {
    return lengths != nullptr ? lengths[b * num_kv_heads + g] : max_len;
  }
};

__device__ int64_t StreamingCount(const Lengths& len, int b, int g, int64_t sink, int64_t window) {
  const int64_t L = len.Of(b, g);
  const int64_t sink_end = min(sink, L);
  return sink_end + max(static_cast<int64_t>(0), L - max(L - window, sink_end));
}

// Block (KV head, sequence).
__global__ void StreamingKernel(const Lengths len, int64_t sink, int64_t window, int32_t* offsets,
                                int32_t* rows) {
  const int g = blockIdx.x, b = blockIdx.y;
  const int64_t index = static_cast<int64_t>(b) * len.num_kv_heads + g;
  int64_t before = 0;
  for (int64_t j = threadIdx.x; j < index; j += kSelectThreads) {
    before += StreamingCount(len, static_cast<int>(j / len.num_kv_heads),
                             static_cast<int>(j % len.num_kv_heads), sink, window);
  }
  int offset = 0;
  topk_internal::BlockInclusiveSum<kSelectThreads>(static_cast<int>(before), &offset);
  const int64_t L = len.Of(b, g);
  const int64_t sink_end = min(sink, L), win_begin = max(L - window, sink_end);
  const int64_t count = sink_end + max(static_cast<int64_t>(0), L - win_begin);
  if (threadIdx.x == 0) {
    offsets[index] = offset;
    if (index == static_cast<int64_t>(gridDim.y) * len.num_kv_heads - 1)
      offsets[index + 1] = offset + count;
  }
  for (int64_t x = threadIdx.x; x < count; x += kSelectThreads) {
    rows[offset + x] = static_cast<int32_t>(x < sink_end ? x : win_begin + (x - sink_end));
  }
}

struct OracleArgs {
  const __nv_bfloat16* q = nullptr;
  int64_t q_batch_stride = 0, q_head_stride = 0;
  const __nv_bfloat16* k = nullptr;
  const void* const* k_seqs = nullptr;
  int64_t kv_batch_stride = 0, kv_head_stride = 0, kv_row_stride = 0;
  Lengths len;
  int32_t group = 1;
  int32_t num_q_heads = 0;
  int64_t top_k = 0;
  float* scores = nullptr;  // [batch][num_q_heads][max_len]
  int32_t* offsets = nullptr;
  int32_t* rows = nullptr;
};

// Block (128 rows, KV head, sequence): each thread one row, its K in registers, the
// group's queries from shared memory.
template <int D>
__global__ void __launch_bounds__(kScoreThreads) OracleScoresKernel(const OracleArgs a) {
  const int g = blockIdx.y, b = blockIdx.z;
  const int64_t L = a.len.Of(b, g);
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kScoreThreads + threadIdx.x;
  if (static_cast<int64_t>(blockIdx.x) * kScoreThreads >= L) return;
  extern __shared__ float qs[];  // [group][D]
  for (int x = threadIdx.x; x < a.group * D; x += kScoreThreads) {
    const int h = g * a.group + x / D;
    qs[x] = __bfloat162float(a.q[b * a.q_batch_stride + h * a.q_head_stride + x % D]);
  }
  __syncthreads();
  if (j >= L) return;
  const __nv_bfloat16* kr = (a.k_seqs != nullptr ? static_cast<const __nv_bfloat16*>(a.k_seqs[b])
                                                 : a.k + b * a.kv_batch_stride) +
                            g * a.kv_head_stride + j * a.kv_row_stride;
  uint32_t kw[D / 2];
#pragma unroll
  for (int v = 0; v < D / 8; ++v) {
    const uint4 x = *reinterpret_cast<const uint4*>(kr + 8 * v);
    kw[4 * v] = x.x;
    kw[4 * v + 1] = x.y;
    kw[4 * v + 2] = x.z;
    kw[4 * v + 3] = x.w;
  }
  for (int hh = 0; hh < a.group; ++hh) {
    float s = 0.0f;
#pragma unroll
    for (int d2 = 0; d2 < D / 2; ++d2) {
      s = fmaf(qs[hh * D + 2 * d2], __uint_as_float(kw[d2] << 16), s);
      s = fmaf(qs[hh * D + 2 * d2 + 1], __uint_as_float(kw[d2] & 0xffff0000u), s);
    }
    const int h = g * a.group + hh;
    a.scores[(static_cast<int64_t>(b) * a.num_q_heads + h) * a.len.max_len + j] = s;
  }
}

// Block (query head, sequence).
__global__ void __launch_bounds__(kSelectThreads) OracleSelectKernel(const OracleArgs a) {
  const int h = blockIdx.x, b = blockIdx.y;
  const int64_t index = static_cast<int64_t>(b) * a.num_q_heads + h;
  int64_t before = 0;
  for (int64_t x = threadIdx.x; x < index; x += kSelectThreads) {
    const int bb = static_cast<int>(x / a.num_q_heads), hh = static_cast<int>(x % a.num_q_heads);
    before += min(a.top_k, a.len.Of(bb, hh / a.group));
  }
  int offset = 0;
  topk_internal::BlockInclusiveSum<kSelectThreads>(static_cast<int>(before), &offset);
  const int64_t L = a.len.Of(b, h / a.group);
  const int64_t count = min(a.top_k, L);
  if (threadIdx.x == 0) {
    a.offsets[index] = offset;
    if (index == static_cast<int64_t>(gridDim.y) * a.num_q_heads - 1)
      a.offsets[index + 1] = offset + count;
  }
  const float* s = a.scores + index * a.len.max_len;
  topk_internal::BlockTopKSorted<kSelectThreads>(
      [s](int64_t i) { return topk_internal::OrderedKey(s[i]); }, L, count, a.rows + offset);
}

absl::Status CheckCommon(const AttentionParams& p, const RowListsOut& out, const char* method) {
  if (out.offsets == nullptr || out.rows == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(method, ": out.offsets and out.rows must be device pointers"));
  }
  if (p.batch < 1 || p.num_kv_heads < 1 || p.num_q_heads % p.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        method, ": batch and num_kv_heads must be >= 1, num_q_heads a multiple of num_kv_heads"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status StreamingSelectRows(const AttentionParams& p, int64_t sink, int64_t window,
                                 const RowListsOut& out) {
  SF_RETURN_IF_ERROR(CheckCommon(p, out, "streaming"));
  if (sink < 0 || window < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("streaming: sink (", sink, ") and window (", window, ") must be >= 0"));
  }
  const Lengths len{p.kv_lengths, p.max_kv_length, p.num_kv_heads};
  StreamingKernel<<<dim3(p.num_kv_heads, p.batch), kSelectThreads, 0, p.stream>>>(
      len, sink, window, out.offsets, out.rows);
  SF_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

int64_t OracleTopKWorkspaceBytes(const AttentionParams& p) {
  return static_cast<int64_t>(p.batch) * p.num_q_heads * p.max_kv_length * 4;
}

absl::Status OracleTopKSelectRows(const AttentionParams& p, int64_t top_k, const RowListsOut& out) {
  SF_RETURN_IF_ERROR(CheckCommon(p, out, "oracle_topk"));
  if (p.q == nullptr || p.k == nullptr) {
    return absl::InvalidArgumentError("oracle_topk: q and k must be device pointers");
  }
  if (top_k < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("oracle_topk: top_k is ", top_k, "; must be >= 1"));
  }
  if (p.head_dim != 64 && p.head_dim != 128 && p.head_dim != 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("oracle_topk: head_dim is ", p.head_dim, "; supported: 64, 128, 256"));
  }
  if (p.kv_row_stride % 8 != 0 || reinterpret_cast<uintptr_t>(p.k) % 16 != 0) {
    return absl::InvalidArgumentError("oracle_topk: k and kv_row_stride must be 16-byte aligned");
  }
  const int64_t need = OracleTopKWorkspaceBytes(p);
  if (p.workspace == nullptr || p.workspace_bytes < need) {
    return absl::InvalidArgumentError(
        absl::StrCat("oracle_topk: workspace_bytes is ", p.workspace_bytes, "; needs ", need));
  }
  OracleArgs a;
  a.q = static_cast<const __nv_bfloat16*>(p.q);
  a.q_batch_stride = p.q_batch_stride;
  a.q_head_stride = p.q_head_stride;
  a.k = static_cast<const __nv_bfloat16*>(p.k);
  a.k_seqs = p.k_seqs;
  a.kv_batch_stride = p.kv_batch_stride;
  a.kv_head_stride = p.kv_head_stride;
  a.kv_row_stride = p.kv_row_stride;
  a.len = {p.kv_lengths, p.max_kv_length, p.num_kv_heads};
  a.group = p.num_q_heads / p.num_kv_heads;
  a.num_q_heads = p.num_q_heads;
  a.top_k = top_k;
  a.scores = static_cast<float*>(p.workspace);
  a.offsets = out.offsets;
  a.rows = out.rows;
  const dim3 grid(static_cast<unsigned>((p.max_kv_length + kScoreThreads - 1) / kScoreThreads),
                  p.num_kv_heads, p.batch);
  const size_t smem = static_cast<size_t>(a.group) * p.head_dim * sizeof(float);
  if (smem > 48 * 1024) {
    return absl::InvalidArgumentError(
        "oracle_topk: group x head_dim too large for the scoring kernel");
  }
  switch (p.head_dim) {
    case 64:
      OracleScoresKernel<64><<<grid, kScoreThreads, smem, p.stream>>>(a);
      break;
    case 128:
      OracleScoresKernel<128><<<grid, kScoreThreads, smem, p.stream>>>(a);
      break;
    default:
      OracleScoresKernel<256><<<grid, kScoreThreads, smem, p.stream>>>(a);
  }
  SF_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  OracleSelectKernel<<<dim3(p.num_q_heads, p.batch), kSelectThreads, 0, p.stream>>>(a);
  SF_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

}  // namespace sf::cuda
