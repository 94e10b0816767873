// ListDevices() for builds without CUDA.
#include "kernels/device.h"

namespace sf {

absl::StatusOr<std::vector<DeviceInfo>> ListDevices() { return std::vector<DeviceInfo>{}; }

std::string NoDeviceReason() { return "this build has no CUDA support (SF_WITH_CUDA=OFF)"; }

}  // namespace sf
