// The device query through the CUDA runtime: the GPU tests' first check that a device is
// there and reports sane properties.
#include <cstdio>

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "kernels/device.h"

namespace sf {
namespace {

TEST(Device, ListDevices_ReportsAtLeastOneWithMemory) {
  SF_ASSERT_OK_AND_ASSIGN(auto devices, ListDevices());
  ASSERT_FALSE(devices.empty());
  for (const DeviceInfo& d : devices) {
    std::printf("device %d: %s, cc %d.%d, %d SMs, %.1f GiB total, %.1f GiB free\n", d.index,
                d.name.c_str(), d.compute_capability_major, d.compute_capability_minor,
                d.multiprocessor_count, d.total_memory_bytes / 1073741824.0,
                d.free_memory_bytes / 1073741824.0);
    EXPECT_GT(d.total_memory_bytes, 0);
    EXPECT_GT(d.free_memory_bytes, 0);
    EXPECT_LE(d.free_memory_bytes, d.total_memory_bytes);
    EXPECT_GT(d.multiprocessor_count, 0);
    EXPECT_GE(d.compute_capability_major, 7);
  }
}

TEST(Device, NoDeviceReason_EmptyWithADevice) { EXPECT_EQ(NoDeviceReason(), ""); }

}  // namespace
}  // namespace sf
