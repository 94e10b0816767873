// GPU tests: a device copy of a host vector, freed at scope exit; CUDA errors fail the
// test (EXPECT) rather than abort it.
#ifndef SF_KERNELS_CUDA_TESTING_DEVICE_VECTOR_H_
#define SF_KERNELS_CUDA_TESTING_DEVICE_VECTOR_H_

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <vector>

#include "gtest/gtest.h"

namespace sf::cuda::testing {

template <typename T>
class Device {
 public:
  explicit Device(const std::vector<T>& host) : size_(host.size()) {
    EXPECT_EQ(cudaMalloc(&ptr_, std::max<size_t>(1, size_) * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(ptr_, host.data(), size_ * sizeof(T), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  ~Device() { cudaFree(ptr_); }
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  T* get() const { return ptr_; }
  std::vector<T> Download() const {
    std::vector<T> host(size_);
    EXPECT_EQ(cudaMemcpy(host.data(), ptr_, size_ * sizeof(T), cudaMemcpyDeviceToHost),
              cudaSuccess);
    return host;
  }

 private:
  T* ptr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace sf::cuda::testing

#endif  // SF_KERNELS_CUDA_TESTING_DEVICE_VECTOR_H_
