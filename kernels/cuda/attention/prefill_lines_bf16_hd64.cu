// One instantiated prefill variant per translation unit (parallel builds, small objects).
#include "kernels/cuda/attention/prefill_kernel.cuh"

namespace sf::cuda::prefill_internal {
template absl::Status LaunchPrefill<64, WalkMode::kLines>(const TensorMaps&, const KernelArgs&,
                                                          bool, cudaStream_t);
}  // namespace sf::cuda::prefill_internal
