// KV eviction after prefill on the GPU: SnapKV and Ada-SnapKV choose the prompt rows
// each KV head keeps, exactly as kernels::CompressKv does on the CPU (docs/methods.md,
// "snapkv", "ada_snapkv"), then CompactKv moves the kept rows of each head to the front
// of a cache (per-head lengths differ afterwards; decode reads kv_lengths). No host
// synchronisation; every function checks its arguments (InvalidArgument naming the
// field) and returns Internal on a launch error.
#ifndef SF_KERNELS_CUDA_ATTENTION_SNAPKV_H_
#define SF_KERNELS_CUDA_ATTENTION_SNAPKV_H_

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/attention/params.h"
#include "kernels/cuda/attention/selection.h"

namespace sf::cuda {

// The prompt's last `rows` queries (after RoPE), positions P - rows .. P - 1: element
// (i, h, d) at q[b * batch_stride + i * row_stride + h * head_stride + d], bf16.
struct ObservationQueries {
  const void* q = nullptr;
  int32_t rows = 0;
  int64_t row_stride = 0;
  int64_t head_stride = 0;
  int64_t batch_stride = 0;
};

// The parameters of snapkv / ada_snapkv (methods/snapkv.cc): window (the last min(window, rows)
// observation queries are used), pool (odd), keep_first, keep_last, token_capacity, and for
// ada_snapkv `adaptive` with `floor`.
struct SnapKvArgs {
  int64_t window = 256;
  int64_t pool = 21;
  int64_t keep_first = 4;
  int64_t keep_last = 128;
  int64_t token_capacity = 0;
  bool adaptive = false;
  double floor = 0.2;
};

// Where SnapKvSelect writes the kept rows: CSR over lists b * num_kv_heads + g, offsets
// [batch * num_kv_heads + 1], rows [batch * num_kv_heads * token_capacity].
struct KeptRowsOut {
  int32_t* offsets = nullptr;
  int32_t* rows = nullptr;
};

// Workspace bytes SnapKvSelect needs for `p` and `obs`.
int64_t SnapKvWorkspaceBytes(const AttentionParams& p, const ObservationQueries& obs,
                             const SnapKvArgs& args);

// Chooses the kept prompt rows. `p` describes the cache right after prefill: every KV
// head of sequence b holds its prompt, P = kv_lengths[b][g] rows (or max_kv_length when
// kv_lengths is null; Ada-SnapKV REQUIRES the same P for every head of a sequence), with
// token_capacity <= P and keep_first + keep_last <= token_capacity (else the CPU
// reference's InvalidArgument; checked here against max_kv_length). Scores use
// p.softmax_scale. Importance is float32 (the CPU's is float64): rows whose pooled
// importances differ by less than float32 rounding may be chosen differently.
absl::Status SnapKvSelect(const AttentionParams& p, const ObservationQueries& obs,
                          const SnapKvArgs& args, const KeptRowsOut& out);

// Copies, for each (sequence, KV head), the kept rows in order into rows 0.. of the
// destination cache (same layout and strides as p's), and writes the counts to
// dst_lengths ([batch][num_kv_heads]). REQUIRES dst distinct from p.k / p.v.
absl::Status CompactKv(const AttentionParams& p, const KeptRows& kept, void* k_dst, void* v_dst,
                       int32_t* dst_lengths);

}  // namespace sf::cuda

#endif  // SF_KERNELS_CUDA_ATTENTION_SNAPKV_H_
