// main() for tests labelled `gpu`: without a usable CUDA device it prints why and
// exits 77, which ctest reports as "skipped"; otherwise it runs the tests.
#include <cstdio>

#include "gtest/gtest.h"
#include "kernels/device.h"

int main(int argc, char** argv) {
  const std::string reason = sf::NoDeviceReason();
  if (!reason.empty()) {
    std::printf("SKIPPED: GPU test needs a CUDA device: %s\n", reason.c_str());
    return 77;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
