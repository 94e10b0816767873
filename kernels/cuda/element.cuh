// Loads and stores of the engine's element types (float32, bfloat16) through float, for
// kernels templated on the element type: arithmetic is always float32, storage is T.
#ifndef SF_KERNELS_CUDA_ELEMENT_CUH_
#define SF_KERNELS_CUDA_ELEMENT_CUH_

#include <cuda_bf16.h>

namespace sf::cuda {

__device__ __forceinline__ float ToFloat(float x) { return x; }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T FromFloat(float x);
template <>
__device__ __forceinline__ float FromFloat<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

}  // namespace sf::cuda

#endif  // SF_KERNELS_CUDA_ELEMENT_CUH_
