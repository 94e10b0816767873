// Random bf16 fill on the device for attention_decode_cuda_bench.
#ifndef SF_BENCH_ATTENTION_DECODE_CUDA_FILL_H_
#define SF_BENCH_ATTENTION_DECODE_CUDA_FILL_H_

#include <cuda_runtime.h>

#include <cstdint>

namespace sf::bench {

// Fills n bf16 values at p with uniform values in [-scale, scale) from `seed`.
cudaError_t FillRandomBf16(void* p, int64_t n, uint64_t seed, float scale);

}  // namespace sf::bench

#endif  // SF_BENCH_ATTENTION_DECODE_CUDA_FILL_H_
