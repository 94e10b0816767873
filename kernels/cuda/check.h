// Turns CUDA runtime errors into absl::Status with the failing call named.
#ifndef SF_KERNELS_CUDA_CHECK_H_
#define SF_KERNELS_CUDA_CHECK_H_

#include <cuda_runtime.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sf::cuda {

inline absl::Status CudaStatus(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(what, ": ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ")"));
}

}  // namespace sf::cuda

#define SF_CUDA_RETURN_IF_ERROR(call)                                                    \
  do {                                                                                   \
    cudaError_t sf_cuda_err_ = (call);                                                   \
    if (sf_cuda_err_ != cudaSuccess) return ::sf::cuda::CudaStatus(sf_cuda_err_, #call); \
  } while (false)

#endif  // SF_KERNELS_CUDA_CHECK_H_
