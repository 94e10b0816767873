// The CUDA engine's linear layers: y[n][out] (=|+=) x[n][in] W^T with W row-major
// [out][in] as Hugging Face stores it. float32 runs cublasSgemm (no TF32, so results
// match the CPU engine); bfloat16 runs cuBLASLt with float32 accumulation, writing bf16
// or float32 (the residual stream and the logits), its plans cached per shape and its
// workspace fixed, so calls can be captured in a CUDA graph.
#ifndef SF_WORKER_MODEL_CUDA_GEMM_H_
#define SF_WORKER_MODEL_CUDA_GEMM_H_

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sf::model {

class DeviceGemm {
 public:
  DeviceGemm() = default;
  ~DeviceGemm();
  DeviceGemm(const DeviceGemm&) = delete;
  DeviceGemm& operator=(const DeviceGemm&) = delete;

  // Creates the handles on `stream`. Internal on a cuBLAS or CUDA error.
  absl::Status Init(cudaStream_t stream);

  // y = x W^T (+ y when `accumulate`); rows of y are `ldy` elements apart, rows of x `in`.
  // REQUIRES: Init succeeded; out, in, n, ldy fit in int.
  absl::Status Run(const float* w, int64_t out, int64_t in, const float* x, int64_t n, float* y,
                   int64_t ldy, bool accumulate);
  absl::Status Run(const __nv_bfloat16* w, int64_t out, int64_t in, const __nv_bfloat16* x,
                   int64_t n, __nv_bfloat16* y, int64_t ldy, bool accumulate);
  absl::Status Run(const __nv_bfloat16* w, int64_t out, int64_t in, const __nv_bfloat16* x,
                   int64_t n, float* y, int64_t ldy, bool accumulate);

  // Bytes of the cuBLASLt workspace held.
  static constexpr int64_t kWorkspaceBytes = 32 << 20;

 private:
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo;
  };
  // (m, n, k, ldd, output type)
  using PlanKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int>;
  absl::Status RunLt(const void* w, int64_t out, int64_t in, const void* x, int64_t n, void* y,
                     int64_t ldy, cudaDataType_t y_type, bool accumulate);
  absl::StatusOr<const Plan*> PlanFor(const PlanKey& key);

  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  void* workspace_ = nullptr;
  std::map<PlanKey, Plan> plans_;
};

}  // namespace sf::model

#endif  // SF_WORKER_MODEL_CUDA_GEMM_H_
