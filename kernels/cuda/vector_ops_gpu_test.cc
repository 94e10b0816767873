// The GPU path end to end: find the device, launch kernels, check on the host.
#include <cmath>
#include <random>

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "kernels/cuda/vector_ops.h"
#include "kernels/device.h"

namespace sf::cuda {
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
    EXPECT_GT(d.multiprocessor_count, 0);
    EXPECT_GE(d.compute_capability_major, 7);
  }
}

TEST(VectorOps, Saxpy_MatchesHostOnOddLength) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  const size_t n = 1'000'003;  // not a multiple of the block
  std::vector<float> x(n), y(n);
  for (size_t i = 0; i < n; ++i) {
    x[i] = dist(rng);
    y[i] = dist(rng);
  }
  SF_ASSERT_OK_AND_ASSIGN(auto out, Saxpy(0, 2.5f, x, y));
  ASSERT_EQ(out.size(), n);
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(out[i], std::fma(2.5f, x[i], y[i])) << "at " << i;
  }
}

TEST(VectorOps, Sum_MatchesHostFloat64) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(0.f, 1.f);
  std::vector<float> x(333'331);
  double expected = 0.0;
  for (float& v : x) {
    v = dist(rng);
    expected += v;
  }
  SF_ASSERT_OK_AND_ASSIGN(double got, Sum(0, x));
  EXPECT_NEAR(got, expected, 1e-9 * expected);
}

TEST(VectorOps, Saxpy_SizeMismatchIsInvalidArgument) {
  EXPECT_THAT(
      Saxpy(0, 1.f, {1.f, 2.f}, {1.f}),
      sf::testing::StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("x has 2")));
}

}  // namespace
}  // namespace sf::cuda
