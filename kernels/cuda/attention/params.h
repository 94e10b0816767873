// The one contract between host code and the CUDA attention kernels: plain structs of
// device pointers, strides and sizes (no methods, no ownership). Every attention kernel
// (dense and sparse prefill, dense and sparse decode) takes an AttentionParams; sparse
// kernels also take one of the selection forms of kernels/cuda/attention/selection.h.
// Kernels may read fields they need and must ignore the rest; adding a field is fine,
// renaming one is a change of every kernel.
#ifndef SF_KERNELS_CUDA_ATTENTION_PARAMS_H_
#define SF_KERNELS_CUDA_ATTENTION_PARAMS_H_

#include <cuda_runtime.h>

#include <cstdint>

namespace sf::cuda {

// Element type of queries, keys, values and outputs. Accumulation is always float32.
enum class AttnDType : int32_t { kBf16 = 0, kF32 = 1 };

struct AttentionParams {
  // Queries after RoPE: element (j, h, d) of new query j (0-based in this call), query
  // head h, dimension d sits at q[j * q_row_stride + h * q_head_stride + d]. Strides are in
  // elements. The engine's layout is [num_queries][num_q_heads][head_dim]
  // (q_head_stride = head_dim, q_row_stride = the projection's row width).
  const void* q = nullptr;
  int64_t q_row_stride = 0;
  int64_t q_head_stride = 0;

  // The layer's keys and values (RoPE already applied to keys): row r of KV head g at
  // k[g * kv_head_stride + r * kv_row_stride + d] (likewise v). The engine's cache is
  // [num_kv_heads][capacity][head_dim]: kv_head_stride = capacity * head_dim,
  // kv_row_stride = head_dim. K and V are never copied per query head (GQA): query head
  // h reads KV head h / (num_q_heads / num_kv_heads).
  const void* k = nullptr;
  const void* v = nullptr;
  int64_t kv_head_stride = 0;
  int64_t kv_row_stride = 0;

  // Rows held per KV head (device, [num_kv_heads]); rows [0, kv_lengths[g]) are valid.
  // Heads may differ after eviction (decode only). nullptr: every head holds
  // max_kv_length rows.
  const int32_t* kv_lengths = nullptr;
  // Largest kv_lengths[g] (the host knows it; sizes grids and workspaces).
  int64_t max_kv_length = 0;

  int64_t num_queries = 0;   // new tokens in this call (1 per sequence in decode)
  int32_t num_q_heads = 0;   // Hq, a multiple of num_kv_heads
  int32_t num_kv_heads = 0;  // Hkv
  int32_t head_dim = 0;      // D: 64, 128 (fast), 256 (correct)

  // Causality: new query j of KV head g may see rows [0, kv_lengths[g] - num_queries + j]
  // (the rows held before the call plus the new ones up to itself). A prefill over an
  // empty cache is the usual causal mask with query j at position j.

  // Multiplies q.k before softmax (1/sqrt(head_dim) unless the model says otherwise).
  float softmax_scale = 1.0f;

  // Output: element (j, h, d) at out[j * out_row_stride + h * out_head_stride + d], in
  // `dtype`. Every element of the num_queries x num_q_heads x head_dim box is written
  // (a row that sees no key, possible only under a sparse selection, is written as 0).
  void* out = nullptr;
  int64_t out_row_stride = 0;
  int64_t out_head_stride = 0;

  // Optional: natural-log log-sum-exp of each row's scaled scores, float32
  // [num_q_heads][num_queries] (-inf for a row that sees no key). nullptr: not written.
  float* lse = nullptr;

  // Scratch owned by the caller (split-KV partial results and the like); each kernel
  // documents how many bytes it needs for a shape. nullptr when it needs none.
  void* workspace = nullptr;
  int64_t workspace_bytes = 0;

  AttnDType dtype = AttnDType::kBf16;
  cudaStream_t stream = nullptr;

  // Batched decode (kernels/cuda/attention/decode.h): `batch` sequences, each with its
  // own queries, cache and output; the fields above describe sequence 0 and sequence b
  // sits `b * *_batch_stride` elements further (or, for K and V, at k_seqs[b] / v_seqs[b]
  // when given: device arrays of [batch] base pointers, for caches allocated apart).
  // With batch > 1, kv_lengths is [batch][num_kv_heads], lse [batch][num_q_heads]
  // [num_queries], and max_kv_length the largest length of any sequence and head.
  int32_t batch = 1;
  int64_t q_batch_stride = 0;
  int64_t kv_batch_stride = 0;
  int64_t out_batch_stride = 0;
  const void* const* k_seqs = nullptr;
  const void* const* v_seqs = nullptr;
};

}  // namespace sf::cuda

#endif  // SF_KERNELS_CUDA_ATTENTION_PARAMS_H_
