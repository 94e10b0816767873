// ListDevices() through the CUDA runtime.
#include <cuda_runtime.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/check.h"
#include "kernels/device.h"

namespace sf {

absl::StatusOr<std::vector<DeviceInfo>> ListDevices() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver) {
    (void)cudaGetLastError();  // clear the sticky error
    return std::vector<DeviceInfo>{};
  }
  SF_CUDA_RETURN_IF_ERROR(err);
  std::vector<DeviceInfo> devices;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop;
    SF_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, i));
    SF_CUDA_RETURN_IF_ERROR(cudaSetDevice(i));
    size_t free_bytes = 0, total_bytes = 0;
    SF_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes));
    DeviceInfo info;
    info.index = i;
    info.name = prop.name;
    info.total_memory_bytes = static_cast<int64_t>(total_bytes);
    info.free_memory_bytes = static_cast<int64_t>(free_bytes);
    info.compute_capability_major = prop.major;
    info.compute_capability_minor = prop.minor;
    info.multiprocessor_count = prop.multiProcessorCount;
    devices.push_back(std::move(info));
  }
  return devices;
}

std::string NoDeviceReason() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err == cudaSuccess && count > 0) return "";
  (void)cudaGetLastError();
  if (err == cudaSuccess || err == cudaErrorNoDevice) return "the CUDA runtime reports no device";
  if (err == cudaErrorInsufficientDriver && access("/dev/nvidiactl", F_OK) != 0) {
    return "no NVIDIA driver or GPU on this machine";
  }
  return absl::StrCat("no usable CUDA device: ", cudaGetErrorName(err), " (",
                      cudaGetErrorString(err), ")");
}

}  // namespace sf
