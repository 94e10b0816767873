// Kernels of the model engine's CUDA backend (worker/model/cuda_engine.cc), all float32:
// embedding gather, RMSNorm, RoPE, SiLU*mul, bias add, KV-cache append and dense causal
// attention (tiled online softmax for prefill, split-sequence for decode). Each wrapper
// launches on `stream` and returns Internal on a launch error; pointers are device
// pointers. See docs/engine.md ("CUDA backend").
#ifndef SF_KERNELS_CUDA_ENGINE_OPS_H_
#define SF_KERNELS_CUDA_ENGINE_OPS_H_

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"

namespace sf::cuda {

// out[i][:] = table[tokens[i]][:] for i < n; rows of `cols` floats. Tokens must be in range
// (the engine checks them on the host).
absl::Status EmbeddingGather(const float* table, const int32_t* tokens, int64_t n, int64_t cols,
                             float* out, cudaStream_t stream);

// out[r] = weight * x[r] / sqrt(mean(x[r]^2) + eps) per row of `cols`, as transformers'
// float32 RMSNorm.
absl::Status RmsNorm(const float* x, const float* weight, int64_t n, int64_t cols, float eps,
                     float* out, cudaStream_t stream);

// y[r][c] += bias[c] for r < n, c < cols; rows `row_stride` floats apart.
absl::Status AddBias(float* y, const float* bias, int64_t n, int64_t cols, int64_t row_stride,
                     cudaStream_t stream);

// Rotates, in place, `heads` heads of `head_dim` at each of the n rows of x (rows
// `row_stride` apart) by the angle (first_position + r) * inv_freq[i], pairing element i
// with i + head_dim/2 (Llama's rotate_half), with cos/sin scaled by `attention_scaling`
// (YaRN). The angle is the float product, its cos/sin taken in double, as the CPU engine.
absl::Status ApplyRope(float* x, int64_t n, int64_t row_stride, int64_t heads, int64_t head_dim,
                       const float* inv_freq, float attention_scaling, int64_t first_position,
                       cudaStream_t stream);

// act[r][j] = silu(gate_up[r][j]) * gate_up[r][I + j] for r < n, j < I.
absl::Status SiluMul(const float* gate_up, int64_t n, int64_t I, float* act, cudaStream_t stream);

// One layer's KV cache on the device: keys and values as [num_kv_heads][capacity][head_dim],
// with each head's row count in `lengths` (device, int64, [num_kv_heads]).
struct DeviceKvLayer {
  float* keys = nullptr;
  float* values = nullptr;
  int64_t* lengths = nullptr;
  int64_t capacity = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
};

// Appends n rows to every head of `layer`: row r of head h is k[r * row_stride + h *
// head_dim ...] (likewise v), written at slot lengths[h] + r; then lengths[h] += n.
// REQUIRES: lengths[h] + n <= capacity for every head (the engine grows the cache first).
absl::Status AppendKv(const DeviceKvLayer& layer, const float* k, const float* v, int64_t n,
                      int64_t row_stride, cudaStream_t stream);

// Dense causal attention of n new queries whose keys and values are already appended to
// `layer`: query j of head q (KV head q / (num_q_heads / num_kv_heads), no K/V copies) sees
// rows [0, lengths[h] - n + j]. q is [n][num_q_heads][head_dim] with rows q_row_stride
// apart; out likewise with out_row_stride. head_dim <= 256. Prefill uses a tiled
// online-softmax kernel (16 queries x 32 keys per step); n == 1 the split-sequence decode
// kernel, whose partial results go to `workspace` (DecodeWorkspaceFloats floats).
struct AttentionArgs {
  const float* q = nullptr;
  int64_t q_row_stride = 0;
  DeviceKvLayer layer;
  int64_t n = 0;
  int num_q_heads = 0;
  float softmax_scale = 1.0f;
  int64_t max_length = 0;  // largest lengths[h] of the layer (host mirror), for the grid
  float* out = nullptr;
  int64_t out_row_stride = 0;
  float* workspace = nullptr;  // decode only
};
absl::Status CausalAttention(const AttentionArgs& args, cudaStream_t stream);

// Floats of workspace the decode kernel needs for `num_q_heads` heads over rows up to
// `max_length`.
int64_t DecodeWorkspaceFloats(int num_q_heads, int head_dim, int64_t max_length);

}  // namespace sf::cuda

#endif  // SF_KERNELS_CUDA_ENGINE_OPS_H_
