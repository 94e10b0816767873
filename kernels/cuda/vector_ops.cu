#include <cuda_runtime.h>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/vector_ops.h"

namespace sf::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void SaxpyKernel(int64_t n, float a, const float* __restrict__ x,
                            float* __restrict__ y) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    y[i] = fmaf(a, x[i], y[i]);  // one rounding, as std::fma on the host
  }
}

__global__ void SumKernel(int64_t n, const float* __restrict__ x, double* __restrict__ out) {
  __shared__ double partial[kThreads];
  double acc = 0.0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    acc += x[i];
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicAdd(out, partial[0]);
}

// Owns one device allocation; frees it on every path.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  absl::Status Allocate(size_t bytes) { return CudaStatus(cudaMalloc(&ptr_, bytes), "cudaMalloc"); }
  template <typename T>
  T* get() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
};

int GridFor(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 4096 ? (blocks > 0 ? blocks : 1) : 4096);
}

}  // namespace

absl::StatusOr<std::vector<float>> Saxpy(int device, float a, const std::vector<float>& x,
                                         const std::vector<float>& y) {
  if (x.size() != y.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Saxpy: x has ", x.size(), " elements but y has ", y.size()));
  }
  SF_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  const int64_t n = static_cast<int64_t>(x.size());
  const size_t bytes = x.size() * sizeof(float);
  DeviceBuffer dx, dy;
  SF_RETURN_IF_ERROR(dx.Allocate(bytes));
  SF_RETURN_IF_ERROR(dy.Allocate(bytes));
  SF_CUDA_RETURN_IF_ERROR(cudaMemcpy(dx.get<float>(), x.data(), bytes, cudaMemcpyHostToDevice));
  SF_CUDA_RETURN_IF_ERROR(cudaMemcpy(dy.get<float>(), y.data(), bytes, cudaMemcpyHostToDevice));
  SaxpyKernel<<<GridFor(n), kThreads>>>(n, a, dx.get<float>(), dy.get<float>());
  SF_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  std::vector<float> out(x.size());
  SF_CUDA_RETURN_IF_ERROR(cudaMemcpy(out.data(), dy.get<float>(), bytes, cudaMemcpyDeviceToHost));
  return out;
}

absl::StatusOr<double> Sum(int device, const std::vector<float>& x) {
  SF_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  const int64_t n = static_cast<int64_t>(x.size());
  DeviceBuffer dx, dout;
  SF_RETURN_IF_ERROR(dx.Allocate(x.size() * sizeof(float) + 1));
  SF_RETURN_IF_ERROR(dout.Allocate(sizeof(double)));
  SF_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(dx.get<float>(), x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice));
  SF_CUDA_RETURN_IF_ERROR(cudaMemset(dout.get<double>(), 0, sizeof(double)));
  SumKernel<<<GridFor(n), kThreads>>>(n, dx.get<float>(), dout.get<double>());
  SF_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  double out = 0.0;
  SF_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(&out, dout.get<double>(), sizeof(double), cudaMemcpyDeviceToHost));
  return out;
}

}  // namespace sf::cuda
