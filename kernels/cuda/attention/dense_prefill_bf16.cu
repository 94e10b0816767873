// LaunchDensePrefill<__nv_bfloat16>: the one instantiation this translation unit builds.
#include <cuda_bf16.h>

#include "kernels/cuda/attention/dense_prefill.cuh"

namespace sf::cuda {
template absl::Status LaunchDensePrefill<__nv_bfloat16>(const AttentionParams& p);
}  // namespace sf::cuda
