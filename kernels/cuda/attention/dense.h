// Dense causal attention over AttentionParams (params.h), float32 or bf16: the engine's
// reference kernels on CUDA cores. Prefill is a tiled online softmax (16 queries x 32 keys
// per step); decode (num_queries == 1) splits the rows into chunks of 512, one block each,
// and merges the chunks' partial softmax results. Both read per-head lengths from
// params.kv_lengths (nullptr: every head holds max_kv_length rows) and share K/V across a
// GQA group without copies. One translation unit per (kernel, element type):
// dense_{prefill,decode}_{f32,bf16}.cu.
#ifndef SF_KERNELS_CUDA_ATTENTION_DENSE_H_
#define SF_KERNELS_CUDA_ATTENTION_DENSE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/attention/params.h"

namespace sf::cuda {

// Largest head_dim the dense kernels accept.
inline constexpr int kDenseMaxHeadDim = 256;

// Prefill when p.num_queries > 1, decode when it is 1. InvalidArgument for a head_dim
// outside (0, 256], query heads that do not divide into KV heads, or a decode call whose
// workspace is smaller than DenseDecodeWorkspaceBytes; Internal on a launch error.
// Writes p.out; ignores p.lse.
absl::Status DenseAttention(const AttentionParams& p);

// Workspace bytes the decode kernel needs for `num_q_heads` heads over rows up to
// `max_kv_length` (the split count is ceil(max_kv_length / 512): a caller that captures a
// decode step in a CUDA graph passes the cache capacity so the grid fits every later step).
int64_t DenseDecodeWorkspaceBytes(int32_t num_q_heads, int32_t head_dim, int64_t max_kv_length);

// The per-variant entry points behind DenseAttention (shapes already checked).
template <typename T>
absl::Status LaunchDensePrefill(const AttentionParams& p);
template <typename T>
absl::Status LaunchDenseDecode(const AttentionParams& p);

}  // namespace sf::cuda

#endif  // SF_KERNELS_CUDA_ATTENTION_DENSE_H_
