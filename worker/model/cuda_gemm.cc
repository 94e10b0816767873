#include "worker/model/cuda_gemm.h"

#include <climits>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cuda/check.h"

namespace sf::model {
namespace {

absl::Status CublasStatus(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", cublasGetStatusName(status), " (",
                                          cublasGetStatusString(status), ")"));
}

absl::Status CheckIntRange(int64_t out, int64_t in, int64_t n, int64_t ldy) {
  if (out > INT_MAX || in > INT_MAX || n > INT_MAX || ldy > INT_MAX) {
    return absl::InvalidArgumentError("GEMM dimensions exceed cuBLAS's int range");
  }
  return absl::OkStatus();
}

}  // namespace

DeviceGemm::~DeviceGemm() {
  for (auto& [key, plan] : plans_) {
    cublasLtMatrixLayoutDestroy(plan.a);
    cublasLtMatrixLayoutDestroy(plan.b);
    cublasLtMatrixLayoutDestroy(plan.c);
    cublasLtMatmulDescDestroy(plan.op);
  }
  if (workspace_ != nullptr) cudaFree(workspace_);
  if (lt_ != nullptr) cublasLtDestroy(lt_);
  if (blas_ != nullptr) cublasDestroy(blas_);
}

absl::Status DeviceGemm::Init(cudaStream_t stream) {
  stream_ = stream;
  SF_RETURN_IF_ERROR(CublasStatus(cublasCreate(&blas_), "cublasCreate"));
  SF_RETURN_IF_ERROR(CublasStatus(cublasSetStream(blas_, stream_), "cublasSetStream"));
  // Plain float32 SGEMM: no TF32 tensor cores, so results match the CPU engine to 1e-4.
  SF_RETURN_IF_ERROR(
      CublasStatus(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode"));
  SF_RETURN_IF_ERROR(CublasStatus(cublasLtCreate(&lt_), "cublasLtCreate"));
  SF_CUDA_RETURN_IF_ERROR(cudaMalloc(&workspace_, kWorkspaceBytes));
  return absl::OkStatus();
}

absl::Status DeviceGemm::Run(const float* w, int64_t out, int64_t in, const float* x, int64_t n,
                             float* y, int64_t ldy, bool accumulate) {
  SF_RETURN_IF_ERROR(CheckIntRange(out, in, n, ldy));
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  // Row-major y = x W^T is column-major y^T = W^T(op T on W's [in x out]) x^T.
  return CublasStatus(
      cublasSgemm(blas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(out), static_cast<int>(n),
                  static_cast<int>(in), &alpha, w, static_cast<int>(in), x, static_cast<int>(in),
                  &beta, y, static_cast<int>(ldy)),
      "cublasSgemm");
}

absl::Status DeviceGemm::Run(const __nv_bfloat16* w, int64_t out, int64_t in,
                             const __nv_bfloat16* x, int64_t n, __nv_bfloat16* y, int64_t ldy,
                             bool accumulate) {
  return RunLt(w, out, in, x, n, y, ldy, CUDA_R_16BF, accumulate);
}

absl::Status DeviceGemm::Run(const __nv_bfloat16* w, int64_t out, int64_t in,
                             const __nv_bfloat16* x, int64_t n, float* y, int64_t ldy,
                             bool accumulate) {
  return RunLt(w, out, in, x, n, y, ldy, CUDA_R_32F, accumulate);
}

absl::StatusOr<const DeviceGemm::Plan*> DeviceGemm::PlanFor(const PlanKey& key) {
  if (auto it = plans_.find(key); it != plans_.end()) return &it->second;
  const auto [m, n, k, ldd, y_type] = key;
  Plan plan;
  SF_RETURN_IF_ERROR(
      CublasStatus(cublasLtMatmulDescCreate(&plan.op, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                   "cublasLtMatmulDescCreate"));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  SF_RETURN_IF_ERROR(CublasStatus(
      cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)),
      "cublasLtMatmulDescSetAttribute"));
  SF_RETURN_IF_ERROR(CublasStatus(
      cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)),
      "cublasLtMatmulDescSetAttribute"));
  // Column-major views: W is [k x m] (ld k), used transposed; x is [k x n] (ld k); y is
  // [m x n] (ld ldd).
  SF_RETURN_IF_ERROR(CublasStatus(cublasLtMatrixLayoutCreate(&plan.a, CUDA_R_16BF, k, m, k),
                                  "cublasLtMatrixLayoutCreate"));
  SF_RETURN_IF_ERROR(CublasStatus(cublasLtMatrixLayoutCreate(&plan.b, CUDA_R_16BF, k, n, k),
                                  "cublasLtMatrixLayoutCreate"));
  SF_RETURN_IF_ERROR(CublasStatus(
      cublasLtMatrixLayoutCreate(&plan.c, static_cast<cudaDataType_t>(y_type), m, n, ldd),
      "cublasLtMatrixLayoutCreate"));
  cublasLtMatmulPreference_t pref = nullptr;
  SF_RETURN_IF_ERROR(
      CublasStatus(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate"));
  const uint64_t ws = kWorkspaceBytes;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                       sizeof(ws));
  cublasLtMatmulHeuristicResult_t result;
  int returned = 0;
  const cublasStatus_t found = cublasLtMatmulAlgoGetHeuristic(lt_, plan.op, plan.a, plan.b, plan.c,
                                                              plan.c, pref, 1, &result, &returned);
  cublasLtMatmulPreferenceDestroy(pref);
  if (found != CUBLAS_STATUS_SUCCESS || returned == 0) {
    cublasLtMatrixLayoutDestroy(plan.a);
    cublasLtMatrixLayoutDestroy(plan.b);
    cublasLtMatrixLayoutDestroy(plan.c);
    cublasLtMatmulDescDestroy(plan.op);
    return absl::InternalError(absl::StrCat("cuBLASLt has no bf16 GEMM for m=", m, " n=", n,
                                            " k=", k, ": ", cublasGetStatusName(found)));
  }
  plan.algo = result.algo;
  return &plans_.emplace(key, plan).first->second;
}

absl::Status DeviceGemm::RunLt(const void* w, int64_t out, int64_t in, const void* x, int64_t n,
                               void* y, int64_t ldy, cudaDataType_t y_type, bool accumulate) {
  SF_RETURN_IF_ERROR(CheckIntRange(out, in, n, ldy));
  SF_ASSIGN_OR_RETURN(const Plan* plan, PlanFor({out, n, in, ldy, static_cast<int>(y_type)}));
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  return CublasStatus(
      cublasLtMatmul(lt_, plan->op, &alpha, w, plan->a, x, plan->b, &beta, y, plan->c, y, plan->c,
                     &plan->algo, workspace_, kWorkspaceBytes, stream_),
      "cublasLtMatmul");
}

}  // namespace sf::model
