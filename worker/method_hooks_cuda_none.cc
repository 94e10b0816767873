// A build without CUDA: no method has a device implementation, so every hook runs on the
// host (the CPU engine, or a host mirror).
#include "worker/method_hooks_cuda.h"

namespace sf::worker {

absl::StatusOr<std::unique_ptr<DeviceMethod>> MakeDevicePrefillMethod(const MethodChoice&) {
  return nullptr;
}

absl::StatusOr<std::unique_ptr<DeviceMethod>> MakeDeviceDecodeMethod(const MethodChoice&) {
  return nullptr;
}

}  // namespace sf::worker
