// The tiled online-softmax prefill kernel, templated on the element type T (float or
// __nv_bfloat16); included only by dense_prefill_{f32,bf16}.cu. Each block takes kBr
// queries of one query head; its 8 warps hold kQpw queries each (accumulators in
// registers, kDpl dims per lane) and walk the visible keys in tiles of kBc staged in shared
// memory as float32. A lane scores one key of the tile (K rows padded to head_dim + 1
// floats so the lanes hit distinct banks), then the warp applies the online softmax update
// and accumulates P V with lanes splitting the head dimension.
#ifndef SF_KERNELS_CUDA_ATTENTION_DENSE_PREFILL_CUH_
#define SF_KERNELS_CUDA_ATTENTION_DENSE_PREFILL_CUH_

#include "kernels/cuda/attention/dense.h"
#include "kernels/cuda/attention/dense_common.cuh"

namespace sf::cuda {
namespace dense_detail {

constexpr int kPrefillWarps = 8;
constexpr int kQpw = 2;
constexpr int kBr = kPrefillWarps * kQpw;
constexpr int kBc = 32;

inline size_t PrefillSharedBytes(int d) {
  return sizeof(float) * (static_cast<size_t>(kBr) * d + static_cast<size_t>(kBc) * (d + 1) +
                          static_cast<size_t>(kBc) * d);
}

template <typename T, int kDpl>
__global__ void __launch_bounds__(kPrefillWarps * 32) PrefillAttentionKernel(AttentionParams a) {
  extern __shared__ float smem[];
  const int d = a.head_dim;
  float* qs = smem;                // [kBr][d]
  float* ks = qs + kBr * d;        // [kBc][d + 1]
  float* vs = ks + kBc * (d + 1);  // [kBc][d]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int head = blockIdx.y;
  const int kvh = head / (a.num_q_heads / a.num_kv_heads);
  const int64_t len = KvLength(a, kvh);
  const int64_t n = a.num_queries;
  const int64_t before = len - n;  // rows held before these queries
  const int64_t q0 = int64_t{blockIdx.x} * kBr;
  const int64_t q_end = q0 + kBr < n ? q0 + kBr : n;
  const T* q = static_cast<const T*>(a.q);
  const T* kbase = static_cast<const T*>(a.k) + int64_t{kvh} * a.kv_head_stride;
  const T* vbase = static_cast<const T*>(a.v) + int64_t{kvh} * a.kv_head_stride;

  for (int idx = threadIdx.x; idx < kBr * d; idx += blockDim.x) {
    const int64_t j = q0 + idx / d;
    qs[idx] =
        j < n ? ToFloat(q[j * a.q_row_stride + int64_t{head} * a.q_head_stride + idx % d]) : 0.0f;
  }
  float m[kQpw], l[kQpw], acc[kQpw][kDpl];
#pragma unroll
  for (int qq = 0; qq < kQpw; ++qq) {
    m[qq] = -INFINITY;
    l[qq] = 0.0f;
#pragma unroll
    for (int t = 0; t < kDpl; ++t) acc[qq][t] = 0.0f;
  }

  const int64_t last_row = before + q_end - 1;  // the block's last query sees up to here
  for (int64_t tile = 0; tile <= last_row; tile += kBc) {
    __syncthreads();  // the previous tile is consumed
    for (int idx = threadIdx.x; idx < kBc * d; idx += blockDim.x) {
      const int r = idx / d, c = idx % d;
      const int64_t row = tile + r;
      float kv = 0.0f, vv = 0.0f;
      if (row < len) {
        kv = ToFloat(kbase[row * a.kv_row_stride + c]);
        vv = ToFloat(vbase[row * a.kv_row_stride + c]);
      }
      ks[r * (d + 1) + c] = kv;
      vs[r * d + c] = vv;
    }
    __syncthreads();
#pragma unroll
    for (int qq = 0; qq < kQpw; ++qq) {
      const int qr = warp * kQpw + qq;
      const int64_t j = q0 + qr;
      const int64_t limit = before + j;      // last visible row of query j
      if (j >= n || tile > limit) continue;  // the same for the whole warp
      const float* qrow = qs + qr * d;
      const float* krow = ks + lane * (d + 1);
      float s = 0.0f;
      for (int c = 0; c < d; ++c) s = fmaf(qrow[c], krow[c], s);
      const bool valid = tile + lane <= limit;
      s = valid ? s * a.softmax_scale : -INFINITY;
      const float m_new = fmaxf(m[qq], WarpMax(s));  // finite: lane 0's row is visible
      const float p = valid ? expf(s - m_new) : 0.0f;
      const float alpha = expf(m[qq] - m_new);  // 0 on the first tile
      l[qq] = l[qq] * alpha + WarpSum(p);
      m[qq] = m_new;
#pragma unroll
      for (int t = 0; t < kDpl; ++t) acc[qq][t] *= alpha;
      const int count = limit - tile + 1 < kBc ? static_cast<int>(limit - tile + 1) : kBc;
      for (int jj = 0; jj < count; ++jj) {
        const float pj = __shfl_sync(kFullMask, p, jj);
        const float* vrow = vs + jj * d;
#pragma unroll
        for (int t = 0; t < kDpl; ++t) {
          const int c = lane + 32 * t;
          if (c < d) acc[qq][t] = fmaf(pj, vrow[c], acc[qq][t]);
        }
      }
    }
  }
  T* out = static_cast<T*>(a.out);
#pragma unroll
  for (int qq = 0; qq < kQpw; ++qq) {
    const int64_t j = q0 + warp * kQpw + qq;
    if (j >= n) continue;
    const float inv = 1.0f / l[qq];
    T* orow = out + j * a.out_row_stride + int64_t{head} * a.out_head_stride;
#pragma unroll
    for (int t = 0; t < kDpl; ++t) {
      const int c = lane + 32 * t;
      if (c < d) orow[c] = FromFloat<T>(acc[qq][t] * inv);
    }
  }
}

template <typename T, int kDpl>
absl::Status LaunchPrefill(const AttentionParams& p) {
  const size_t smem = PrefillSharedBytes(p.head_dim);
  if (smem > 48 * 1024) {
    SF_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(PrefillAttentionKernel<T, kDpl>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 static_cast<int>(smem)));
  }
  const dim3 grid(static_cast<unsigned>((p.num_queries + kBr - 1) / kBr),
                  static_cast<unsigned>(p.num_q_heads));
  PrefillAttentionKernel<T, kDpl><<<grid, kPrefillWarps * 32, smem, p.stream>>>(p);
  return Launched("PrefillAttentionKernel");
}

}  // namespace dense_detail

template <typename T>
absl::Status LaunchDensePrefill(const AttentionParams& p) {
  using dense_detail::LaunchPrefill;
  if (p.head_dim <= 32) return LaunchPrefill<T, 1>(p);
  if (p.head_dim <= 64) return LaunchPrefill<T, 2>(p);
  if (p.head_dim <= 128) return LaunchPrefill<T, 4>(p);
  return LaunchPrefill<T, 8>(p);
}

}  // namespace sf::cuda

#endif  // SF_KERNELS_CUDA_ATTENTION_DENSE_PREFILL_CUH_
