// The model engine's CUDA kernels other than attention (worker/model/cuda_engine.cc):
// embedding gather, RMSNorm, RoPE, SiLU*mul, bias add, KV-cache append, Quest page
// bounds, weight conversion and random weights. Attention lives in kernels/cuda/attention/.
// Each function is a template over the element type T of activations and weights
// (float or __nv_bfloat16, explicitly instantiated for both); arithmetic is float32, the
// residual stream is float32 in both. Each wrapper launches on `stream` and returns
// Internal on a launch error; pointers are device pointers. See docs/engine.md.
#ifndef SF_KERNELS_CUDA_ENGINE_OPS_H_
#define SF_KERNELS_CUDA_ENGINE_OPS_H_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"

namespace sf::cuda {

using bf16 = __nv_bfloat16;

// out[i][:] = float(table[tokens[i]][:]) for i < n; rows of `cols`. Tokens must be in
// range (the engine checks them on the host).
template <typename T>
absl::Status EmbeddingGather(const T* table, const int32_t* tokens, int64_t n, int64_t cols,
                             float* out, cudaStream_t stream);

// out[r] = T(weight * x[r] / sqrt(mean(x[r]^2) + eps)) per row of `cols`, as transformers'
// RMSNorm computes it in float32. The residual add before it is the preceding GEMM's
// accumulation into x (beta = 1), so x is read once.
template <typename T>
absl::Status RmsNorm(const float* x, const float* weight, int64_t n, int64_t cols, float eps,
                     T* out, cudaStream_t stream);

// y[r][c] = T(y[r][c] + bias[c]) for r < n, c < cols; rows `row_stride` elements apart.
template <typename T>
absl::Status AddBias(T* y, const float* bias, int64_t n, int64_t cols, int64_t row_stride,
                     cudaStream_t stream);

// Rotates, in place, `heads` heads of `head_dim` at each of the n rows of x (rows
// `row_stride` apart) by the angle p * inv_freq[i] with p = first_position + r (plus
// *device_position when that is not null: decode graphs read the position from the
// device), pairing element i with i + head_dim/2 (Llama's rotate_half), with cos/sin
// scaled by `attention_scaling` (YaRN). Every RoPE scaling type is folded into inv_freq
// and attention_scaling on the host (model_config.h, ComputeRope). The angle is the float
// product, its cos/sin taken in double, as the CPU engine.
template <typename T>
absl::Status ApplyRope(T* x, int64_t n, int64_t row_stride, int64_t heads, int64_t head_dim,
                       const float* inv_freq, float attention_scaling, int64_t first_position,
                       const int64_t* device_position, cudaStream_t stream);

// act[r][j] = T(silu(gate_up[r][j]) * gate_up[r][I + j]) for r < n, j < I.
template <typename T>
absl::Status SiluMul(const T* gate_up, int64_t n, int64_t I, T* act, cudaStream_t stream);

// One layer's KV cache on the device: keys and values as [num_kv_heads][capacity][head_dim],
// with each head's row count in `lengths` (device, int32, [num_kv_heads]).
template <typename T>
struct DeviceKvLayer {
  T* keys = nullptr;
  T* values = nullptr;
  int32_t* lengths = nullptr;
  int64_t capacity = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
};

// Appends n rows to every head of `layer`: row r of head h is k[r * row_stride + h *
// head_dim ...] (likewise v), written at slot lengths[h] + r; then lengths[h] += n.
// REQUIRES: lengths[h] + n <= capacity for every head (the engine grows the cache first).
template <typename T>
absl::Status AppendKv(const DeviceKvLayer<T>& layer, const T* k, const T* v, int64_t n,
                      int64_t row_stride, cudaStream_t stream);

// Quest page bounds of `layer` after n rows were appended to every head: for each page
// that holds any of the last n rows of a head, the element-wise min and max of its keys,
// float32 [num_kv_heads][pages_per_head][head_dim] (page p = rows [p * page_size,
// (p + 1) * page_size) clipped to the head's length).
template <typename T>
absl::Status UpdatePageBounds(const DeviceKvLayer<T>& layer, int64_t n, int page_size,
                              int64_t pages_per_head, float* key_min, float* key_max,
                              cudaStream_t stream);

// Checkpoint element types a weight can arrive in.
enum class WeightSource { kF32, kF16, kBf16 };

// dst[i] = T(src[i]) for i < count, src of type `source` (little-endian, as safetensors).
template <typename T>
absl::Status ConvertWeights(const void* src, WeightSource source, int64_t count, T* dst,
                            cudaStream_t stream);

// dst[i] = T(bf16(mean + stddev * z_i)) with z_i standard normal from a counter-based
// generator keyed by (seed, i): the same values for both element types, so a bf16 engine
// and a float32 engine initialised with one seed hold identical weights.
template <typename T>
absl::Status FillRandomNormal(T* dst, int64_t count, uint64_t seed, float mean, float stddev,
                              cudaStream_t stream);

}  // namespace sf::cuda

#endif  // SF_KERNELS_CUDA_ENGINE_OPS_H_
