// Device-side random fill for attention_decode_cuda_bench: caches of several GB are
// filled in milliseconds instead of being generated on the host and copied.
#include <cuda_bf16.h>

#include <cstdint>

#include "bench/attention_decode_cuda_fill.h"

namespace sf::bench {
namespace {

__device__ uint32_t Hash(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return static_cast<uint32_t>(x);
}

// Uniform in [-scale, scale) from a counter hash: never all zeros, deterministic.
__global__ void FillKernel(__nv_bfloat16* p, int64_t n, uint64_t seed, float scale) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float u = (Hash(seed * 0x9e3779b97f4a7c15ull + i) >> 8) * (1.0f / 16777216.0f);
    p[i] = __float2bfloat16_rn((2.0f * u - 1.0f) * scale);
  }
}

}  // namespace

cudaError_t FillRandomBf16(void* p, int64_t n, uint64_t seed, float scale) {
  FillKernel<<<1024, 256>>>(static_cast<__nv_bfloat16*>(p), n, seed, scale);
  return cudaGetLastError();
}

}  // namespace sf::bench
