// LaunchDenseDecode<float>: the one instantiation this translation unit builds.
#include <cuda_bf16.h>

#include "kernels/cuda/attention/dense_decode.cuh"

namespace sf::cuda {
template absl::Status LaunchDenseDecode<float>(const AttentionParams& p);
}  // namespace sf::cuda
