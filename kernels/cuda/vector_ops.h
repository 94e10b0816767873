// Small vector kernels: the first CUDA code of the project and the GPU path's
// smoke test (launch, copy, check on the host).
#ifndef SF_KERNELS_CUDA_VECTOR_OPS_H_
#define SF_KERNELS_CUDA_VECTOR_OPS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace sf::cuda {

// y[i] = fma(a, x[i], y[i]) (one rounding, bit-identical to std::fma), computed on device `device`.
// Returns the new y. InvalidArgument if x and y differ in size; Internal on a CUDA error.
absl::StatusOr<std::vector<float>> Saxpy(int device, float a, const std::vector<float>& x,
                                         const std::vector<float>& y);

// Sum of x in float64, computed by a block-tree reduction on device `device`.
absl::StatusOr<double> Sum(int device, const std::vector<float>& x);

}  // namespace sf::cuda

#endif  // SF_KERNELS_CUDA_VECTOR_OPS_H_
