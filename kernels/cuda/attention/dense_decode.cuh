// The split-KV decode kernel, templated on the element type T (float or __nv_bfloat16);
// included only by dense_decode_{f32,bf16}.cu. One query per head; the rows are split
// into chunks of kDecodeChunk, one block each (grid: splits x heads), and the block's
// warps take the chunk's 32-row tiles in turn. A warp scores a row with lanes splitting the
// head dimension (coalesced reads), then updates its online softmax per tile. Each block
// leaves (max, sum, unnormalised output) in the workspace; DecodeCombineKernel merges the
// chunks of a head. Chunks past a head's length write an empty partial result, so a grid
// sized for the cache capacity (CUDA graphs) gives the same output as one sized for the
// longest head.
#ifndef SF_KERNELS_CUDA_ATTENTION_DENSE_DECODE_CUH_
#define SF_KERNELS_CUDA_ATTENTION_DENSE_DECODE_CUH_

#include "kernels/cuda/attention/dense.h"
#include "kernels/cuda/attention/dense_common.cuh"

namespace sf::cuda {
namespace dense_detail {

constexpr int kDecodeWarps = 4;
constexpr int64_t kDecodeChunk = 512;  // keep equal to dense.cu's

inline int64_t DecodeSplits(int64_t max_length) {
  const int64_t s = (max_length + kDecodeChunk - 1) / kDecodeChunk;
  return s > 0 ? s : 1;
}

template <typename T, int kDpl>
__global__ void __launch_bounds__(kDecodeWarps * 32)
    DecodeAttentionKernel(AttentionParams a, int64_t splits) {
  __shared__ float sm_m[kDecodeWarps], sm_l[kDecodeWarps];
  __shared__ float sm_acc[kDecodeWarps][kDenseMaxHeadDim];
  const int d = a.head_dim;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int head = blockIdx.y;
  const int kvh = head / (a.num_q_heads / a.num_kv_heads);
  const int64_t len = KvLength(a, kvh);
  const int64_t start = int64_t{blockIdx.x} * kDecodeChunk;
  const int64_t end = start + kDecodeChunk < len ? start + kDecodeChunk : len;
  const T* kbase = static_cast<const T*>(a.k) + int64_t{kvh} * a.kv_head_stride;
  const T* vbase = static_cast<const T*>(a.v) + int64_t{kvh} * a.kv_head_stride;
  const T* q = static_cast<const T*>(a.q) + int64_t{head} * a.q_head_stride;
  float* workspace = static_cast<float*>(a.workspace);

  float qv[kDpl], acc[kDpl];
#pragma unroll
  for (int t = 0; t < kDpl; ++t) {
    const int c = lane + 32 * t;
    qv[t] = c < d ? ToFloat(q[c]) : 0.0f;
    acc[t] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int64_t tile = start + 32 * warp; tile < end; tile += 32 * kDecodeWarps) {
    const int count = end - tile < 32 ? static_cast<int>(end - tile) : 32;
    float s_mine = -INFINITY;
    for (int jj = 0; jj < count; ++jj) {
      const T* krow = kbase + (tile + jj) * a.kv_row_stride;
      float partial = 0.0f;
#pragma unroll
      for (int t = 0; t < kDpl; ++t) {
        const int c = lane + 32 * t;
        if (c < d) partial = fmaf(qv[t], ToFloat(krow[c]), partial);
      }
      const float s = WarpSum(partial) * a.softmax_scale;
      if (lane == jj) s_mine = s;
    }
    const float m_new = fmaxf(m, WarpMax(s_mine));
    const float p = lane < count ? expf(s_mine - m_new) : 0.0f;
    const float alpha = expf(m - m_new);
    l = l * alpha + WarpSum(p);
    m = m_new;
#pragma unroll
    for (int t = 0; t < kDpl; ++t) acc[t] *= alpha;
    for (int jj = 0; jj < count; ++jj) {
      const float pj = __shfl_sync(kFullMask, p, jj);
      const T* vrow = vbase + (tile + jj) * a.kv_row_stride;
#pragma unroll
      for (int t = 0; t < kDpl; ++t) {
        const int c = lane + 32 * t;
        if (c < d) acc[t] = fmaf(pj, ToFloat(vrow[c]), acc[t]);
      }
    }
  }
  if (lane == 0) {
    sm_m[warp] = m;
    sm_l[warp] = l;
  }
#pragma unroll
  for (int t = 0; t < kDpl; ++t) {
    const int c = lane + 32 * t;
    if (c < d) sm_acc[warp][c] = acc[t];
  }
  __syncthreads();
  float big = -INFINITY;
  for (int w = 0; w < kDecodeWarps; ++w) big = fmaxf(big, sm_m[w]);
  float* part = workspace + (int64_t{head} * splits + blockIdx.x) * (d + 2);
  if (big == -INFINITY) {  // this chunk lies past the head's rows
    for (int c = threadIdx.x; c < d + 2; c += blockDim.x) part[c] = c == 0 ? -INFINITY : 0.0f;
    return;
  }
  float sum = 0.0f;
  for (int w = 0; w < kDecodeWarps; ++w) sum += sm_l[w] * expf(sm_m[w] - big);
  if (threadIdx.x == 0) {
    part[0] = big;
    part[1] = sum;
  }
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float o = 0.0f;
    for (int w = 0; w < kDecodeWarps; ++w) o += sm_acc[w][c] * expf(sm_m[w] - big);
    part[2 + c] = o;
  }
}

template <typename T>
__global__ void DecodeCombineKernel(AttentionParams a, int64_t splits) {
  const int d = a.head_dim;
  const int head = blockIdx.x;
  const float* parts = static_cast<const float*>(a.workspace) + int64_t{head} * splits * (d + 2);
  float big = -INFINITY;
  for (int64_t s = 0; s < splits; ++s) big = fmaxf(big, parts[s * (d + 2)]);
  float sum = 0.0f;
  for (int64_t s = 0; s < splits; ++s) {
    const float ms = parts[s * (d + 2)];
    if (ms != -INFINITY) sum += parts[s * (d + 2) + 1] * expf(ms - big);
  }
  T* out = static_cast<T*>(a.out) + int64_t{head} * a.out_head_stride;
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float o = 0.0f;
    for (int64_t s = 0; s < splits; ++s) {
      const float ms = parts[s * (d + 2)];
      if (ms != -INFINITY) o += parts[s * (d + 2) + 2 + c] * expf(ms - big);
    }
    out[c] = FromFloat<T>(sum > 0.0f ? o / sum : 0.0f);
  }
}

template <typename T, int kDpl>
absl::Status LaunchDecode(const AttentionParams& p) {
  const int64_t splits = DecodeSplits(p.max_kv_length);
  const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(p.num_q_heads));
  DecodeAttentionKernel<T, kDpl><<<grid, kDecodeWarps * 32, 0, p.stream>>>(p, splits);
  SF_RETURN_IF_ERROR(Launched("DecodeAttentionKernel"));
  DecodeCombineKernel<T><<<p.num_q_heads, 128, 0, p.stream>>>(p, splits);
  return Launched("DecodeCombineKernel");
}

}  // namespace dense_detail

template <typename T>
absl::Status LaunchDenseDecode(const AttentionParams& p) {
  using dense_detail::LaunchDecode;
  if (p.head_dim <= 32) return LaunchDecode<T, 1>(p);
  if (p.head_dim <= 64) return LaunchDecode<T, 2>(p);
  if (p.head_dim <= 128) return LaunchDecode<T, 4>(p);
  return LaunchDecode<T, 8>(p);
}

}  // namespace sf::cuda

#endif  // SF_KERNELS_CUDA_ATTENTION_DENSE_DECODE_CUH_
