// Decode attention on the GPU (bf16 queries, keys, values and outputs; float32
// accumulation): one new query per sequence against its KV cache, split over the cache
// (flash-decoding) with a combine step. Each CTA reads the K/V rows of its slice of one
// KV head once for all query heads of the GQA group (tensor cores, up to 8 heads per
// CTA). Dense decode reads rows [0, kv_lengths[g]); the sparse forms read the rows a
// selection names (Quest pages, or gathered rows for streaming / oracle_topk / anything
// else) with the same kernel. Methods and their CPU definitions: docs/methods.md.
//
// Every function checks `p` and returns InvalidArgument naming the field at fault, or
// Internal on a CUDA launch error; nothing synchronises with the host. Launches go to
// p.stream. head_dim 64 and 128 are the fast paths, 256 is supported.
#ifndef SF_KERNELS_CUDA_ATTENTION_DECODE_H_
#define SF_KERNELS_CUDA_ATTENTION_DECODE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/attention/params.h"
#include "kernels/cuda/attention/selection.h"

namespace sf::cuda {

// How a decode call is split over the cache: `num_splits` CTAs per (sequence, KV head,
// block of up to 8 query heads), each over `chunk` consecutive selected rows, and the
// workspace the partial results need (0 when num_splits == 1: no combine step).
struct DecodePlan {
  int32_t num_splits = 1;
  int64_t chunk = 0;
  int64_t workspace_bytes = 0;
};

// The plan DenseDecode uses for `p` (depends on batch, heads, head_dim, max_kv_length and
// the current device's multiprocessor count). Allocate p.workspace from it.
absl::StatusOr<DecodePlan> PlanDenseDecode(const AttentionParams& p);

// Dense decode: for each sequence b and query head h, the single new query (num_queries
// == 1, already appended to the cache) attends to rows [0, kv_lengths[b][g]) of KV head
// g = h / (num_q_heads / num_kv_heads); writes out (bf16) and, when given, lse.
// A head with length 0 is written as zeros (lse -inf).
// REQUIRES: dtype bf16; k, v, kv strides and the base pointers 16-byte aligned;
// p.workspace_bytes >= PlanDenseDecode(p)->workspace_bytes.
absl::Status DenseDecode(const AttentionParams& p);

// Sparse decode over the rows a selection names, with the dense kernel's split-KV
// machinery. Lists (CSR, ascending) belong to query heads (heads.count == num_q_heads) or
// GQA groups (== num_kv_heads); with batch > 1 list i of sequence b is b * heads.count + i.
// Rows at or past kv_lengths are skipped. `max_selected` bounds the rows of any list
// (pages x page for PageSelection); it sizes the grid and the workspace.
absl::StatusOr<DecodePlan> PlanSparseDecode(const AttentionParams& p, const ListHeads& heads,
                                            int64_t max_selected);
absl::Status PagedDecode(const AttentionParams& p, const PageSelection& pages,
                         int64_t max_selected);

// A list of rows per query head or GQA group (streaming's sink + window, oracle_topk's
// top keys, a compacted cache's survivors): same CSR shape as KeptRows.
struct RowSelection {
  ListHeads heads;
  const int32_t* offsets = nullptr;  // [batch * heads.count + 1]
  const int32_t* rows = nullptr;
};
absl::Status GatheredDecode(const AttentionParams& p, const RowSelection& rows,
                            int64_t max_selected);

}  // namespace sf::cuda

#endif  // SF_KERNELS_CUDA_ATTENTION_DECODE_H_
