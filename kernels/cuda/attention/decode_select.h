// Per-step row selections for sparse decode methods that pick cache rows (docs/methods.md):
// streaming (sink + rolling window) and oracle_topk (the exact top-k keys by q.k). Each
// writes CSR lists that GatheredDecode (decode.h) consumes as a RowSelection, on the
// device with no host synchronisation. Errors: InvalidArgument naming the field,
// Internal on a launch error.
#ifndef SF_KERNELS_CUDA_ATTENTION_DECODE_SELECT_H_
#define SF_KERNELS_CUDA_ATTENTION_DECODE_SELECT_H_

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/attention/decode.h"
#include "kernels/cuda/attention/params.h"

namespace sf::cuda {

// Output lists: offsets [lists + 1], rows with room for every list's rows.
struct RowListsOut {
  int32_t* offsets = nullptr;
  int32_t* rows = nullptr;
};

// Streaming's decode rule per (sequence, KV head) with length L (the query is row L - 1):
// rows [0, min(sink, L)) and [max(L - window, 0), L), merged. Lists per KV head
// (heads.count = num_kv_heads); rows capacity batch * num_kv_heads * (sink + window).
absl::Status StreamingSelectRows(const AttentionParams& p, int64_t sink, int64_t window,
                                 const RowListsOut& out);

// Workspace bytes OracleTopKSelectRows needs (one float score per row and query head).
int64_t OracleTopKWorkspaceBytes(const AttentionParams& p);

// oracle_topk per query head h (lists per query head, heads.count = num_q_heads): the
// top_k rows of its KV head by q_h . k (no scale; ties to the lower row), every row when
// top_k >= L. Scores are float32 sums of exact bf16 products (the CPU sums in float64):
// rows whose scores differ by less than float32 rounding may be chosen differently.
// Rows capacity batch * num_q_heads * top_k.
absl::Status OracleTopKSelectRows(const AttentionParams& p, int64_t top_k, const RowListsOut& out);

}  // namespace sf::cuda

#endif  // SF_KERNELS_CUDA_ATTENTION_DECODE_SELECT_H_
