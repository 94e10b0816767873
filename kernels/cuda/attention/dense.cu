#include <cuda_bf16.h>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/attention/dense.h"

namespace sf::cuda {
namespace {

constexpr int64_t kDecodeChunk = 512;  // keep equal to the decode kernel's chunk

}  // namespace

int64_t DenseDecodeWorkspaceBytes(int32_t num_q_heads, int32_t head_dim, int64_t max_kv_length) {
  const int64_t splits = max_kv_length > 0 ? (max_kv_length + kDecodeChunk - 1) / kDecodeChunk : 1;
  return int64_t{num_q_heads} * splits * (head_dim + 2) * static_cast<int64_t>(sizeof(float));
}

absl::Status DenseAttention(const AttentionParams& p) {
  if (p.head_dim <= 0 || p.head_dim > kDenseMaxHeadDim) {
    return absl::InvalidArgumentError(absl::StrCat("CUDA dense attention supports head_dim up to ",
                                                   kDenseMaxHeadDim, ", not ", p.head_dim));
  }
  if (p.num_kv_heads <= 0 || p.num_q_heads % p.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        p.num_q_heads, " query heads do not divide into ", p.num_kv_heads, " KV heads"));
  }
  if (p.num_queries <= 0) return absl::OkStatus();
  if (p.num_queries == 1) {
    const int64_t need = DenseDecodeWorkspaceBytes(p.num_q_heads, p.head_dim, p.max_kv_length);
    if (p.workspace == nullptr || p.workspace_bytes < need) {
      return absl::InvalidArgumentError(absl::StrCat(
          "CUDA dense decode needs ", need, " bytes of workspace, given ", p.workspace_bytes));
    }
    return p.dtype == AttnDType::kBf16 ? LaunchDenseDecode<__nv_bfloat16>(p)
                                       : LaunchDenseDecode<float>(p);
  }
  return p.dtype == AttnDType::kBf16 ? LaunchDensePrefill<__nv_bfloat16>(p)
                                     : LaunchDensePrefill<float>(p);
}

}  // namespace sf::cuda
