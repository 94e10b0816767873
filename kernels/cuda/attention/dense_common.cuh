// Helpers shared by the dense attention kernels' translation units.
#ifndef SF_KERNELS_CUDA_ATTENTION_DENSE_COMMON_CUH_
#define SF_KERNELS_CUDA_ATTENTION_DENSE_COMMON_CUH_

#include <cuda_runtime.h>

#include "absl/status/status.h"
#include "common/status.h"
#include "kernels/cuda/attention/params.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/element.cuh"

namespace sf::cuda::dense_detail {

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float WarpSum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

__device__ __forceinline__ float WarpMax(float v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

// Rows held by KV head g.
__device__ __forceinline__ int64_t KvLength(const AttentionParams& p, int g) {
  return p.kv_lengths != nullptr ? int64_t{p.kv_lengths[g]} : p.max_kv_length;
}

inline absl::Status Launched(const char* what) { return CudaStatus(cudaGetLastError(), what); }

}  // namespace sf::cuda::dense_detail

#endif  // SF_KERNELS_CUDA_ATTENTION_DENSE_COMMON_CUH_
