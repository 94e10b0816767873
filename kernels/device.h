// The accelerators this process can use, as reported by the CUDA runtime. A build
// without CUDA, or a machine without a device, reports none.
#ifndef SF_KERNELS_DEVICE_H_
#define SF_KERNELS_DEVICE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sf {

struct DeviceInfo {
  int index = 0;
  std::string name;  // e.g. "NVIDIA H200"
  int64_t total_memory_bytes = 0;
  int64_t free_memory_bytes = 0;
  int compute_capability_major = 0;
  int compute_capability_minor = 0;
  int multiprocessor_count = 0;
};

// Lists the visible CUDA devices. Returns an empty list when the build has no
// CUDA or no device is present (not an error: CPU workers are normal); returns
// Internal for a driver or runtime failure other than "no device".
absl::StatusOr<std::vector<DeviceInfo>> ListDevices();

// A one-line, human-readable description of why no device is usable (for skip
// messages and worker logs), or "" when at least one device is present.
std::string NoDeviceReason();

}  // namespace sf

#endif  // SF_KERNELS_DEVICE_H_
