// Sparse prefill selection on the GPU: each method's estimation (scores of the last
// queries, pooled blocks, antidiagonals) and its choice (top-k, cumulative mass) run on the
// device with no host synchronisation inside, and produce the device selection forms of
// kernels/cuda/attention/selection.h that the sparse prefill kernels consume. Each entry
// point is the GPU form of the CPU reference's PrefillSelect for one method
// (kernels/cpu/methods/<name>.cc, docs/methods.md): same parameters, same choice up to
// float32 rounding at near-ties (docs/gpu.md says how that is checked).
//
// Calling convention (every method):
//   - `attn` gives q, k (bf16), strides, num_queries, num_q_heads, num_kv_heads, head_dim,
//     max_kv_length and stream. Query row j sits at position
//     q_offset + j with q_offset = max_kv_length - num_queries; kv_lengths is ignored
//     (prefill: every KV head holds max_kv_length rows). The scale of every softmax is the
//     method's own, 1/sqrt(head_dim) as in the reference (attn.softmax_scale is not read).
//   - Sizes first: XxxSelectSizes(attn, method) says how many bytes of device workspace
//     and how many int32 entries each output buffer needs. The caller allocates them and
//     passes them in; nothing is allocated inside.
//   - SelectXxx enqueues kernels on attn.stream and returns at once; the returned
//     selection's pointers point into the caller's buffers and are valid once the stream
//     reaches that point. Errors (bad shapes, parameters, buffers too small) are returned
//     before anything is enqueued, with the CPU reference's messages for parameters.
// Head dims 64, 128 and 256; any lengths; any GQA ratio.
#ifndef SF_KERNELS_CUDA_ATTENTION_SELECT_H_
#define SF_KERNELS_CUDA_ATTENTION_SELECT_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "kernels/cpu/methods/block_sparse.h"
#include "kernels/cpu/methods/flexprefill.h"
#include "kernels/cpu/methods/streaming.h"
#include "kernels/cpu/methods/vertical_slash.h"
#include "kernels/cpu/methods/xattention.h"
#include "kernels/cuda/attention/params.h"
#include "kernels/cuda/attention/selection.h"

namespace sf::cuda {

// What a method needs from the caller. Entry counts are int32 elements.
struct SelectionSizes {
  int64_t workspace_bytes = 0;
  int64_t column_offsets = 0;    // LineSelection: heads + 1
  int64_t columns = 0;           // capacity for all heads' columns
  int64_t diagonal_offsets = 0;  // heads + 1
  int64_t diagonals = 0;
  int64_t block_offsets = 0;  // BlockSelection: heads * num_query_blocks + 1
  int64_t key_blocks = 0;     // capacity for all lists' key blocks
  int64_t head_kinds = 0;     // MixedSelection: heads
};

// Caller-owned device buffers the selection is written into (int32). Pointers a method
// does not use may be null; each must hold at least the count SelectionSizes gives.
struct SelectionBuffers {
  void* workspace = nullptr;
  int64_t workspace_bytes = 0;
  int32_t* column_offsets = nullptr;
  int32_t* columns = nullptr;
  int64_t columns_capacity = 0;
  int32_t* diagonal_offsets = nullptr;
  int32_t* diagonals = nullptr;
  int64_t diagonals_capacity = 0;
  int32_t* block_offsets = nullptr;
  int32_t* key_blocks = nullptr;
  int64_t key_blocks_capacity = 0;
  int32_t* head_kinds = nullptr;
};

// vertical_slash: the last `last_q` queries' causal softmax over all keys, column and
// diagonal sums, the first `sink` columns and `local` diagonals forced, the top
// `verticals` columns and `slashes` diagonals per query head (ties to the lower index).
// Lists per query head. Estimation FLOPs: EstimationFlops below.
absl::StatusOr<SelectionSizes> VerticalSlashSelectSizes(const AttentionParams& attn,
                                                        const kernels::VerticalSlashParams& p);
absl::StatusOr<LineSelection> SelectVerticalSlash(const AttentionParams& attn,
                                                  const kernels::VerticalSlashParams& p,
                                                  const SelectionBuffers& out);

// flexprefill, variant=study: the last `last_q` queries' causal softmax; per head
// max(min_budget, cover(gamma), 4) columns and max(min_budget, cover(gamma), 64)
// diagonals (cover: the count of largest mean scores whose running sum stays <= gamma,
// plus one), the first 4 columns and 64 diagonals forced; gamma >= 1 keeps every line.
// Lists per query head, lengths vary by head. variant=original: InvalidArgument (use
// SelectFlexPrefillMixed). FlexPrefillSelectSizes serves both variants.
absl::StatusOr<SelectionSizes> FlexPrefillSelectSizes(const AttentionParams& attn,
                                                      const kernels::FlexPrefillParams& p);
absl::StatusOr<LineSelection> SelectFlexPrefillLines(const AttentionParams& attn,
                                                     const kernels::FlexPrefillParams& p,
                                                     const SelectionBuffers& out);

// flexprefill, variant=original: per head, the last `block` queries' block distribution
// (sum-pooled attention) against the pooled estimate (softmax of pooled q . pooled k);
// Jensen-Shannon distance < tau makes the head query-aware: each query block keeps the
// key blocks covering gamma of the pooled estimate (sink and diagonal forced, at least
// ceil(min_budget / block)) -> its lists in `blocks`; other heads take the study's lines
// estimated from the last `block` queries -> `lines`. head_kinds says which (selection.h
// MixedSelection). REQUIRES p.original and q_offset a multiple of `block`.
absl::StatusOr<MixedSelection> SelectFlexPrefillMixed(const AttentionParams& attn,
                                                      const kernels::FlexPrefillParams& p,
                                                      const SelectionBuffers& out);

// streaming: columns [0, sink) and diagonals [0, window) for every query head.
absl::StatusOr<SelectionSizes> StreamingSelectSizes(const AttentionParams& attn,
                                                    const kernels::StreamingParams& p);
absl::StatusOr<LineSelection> SelectStreaming(const AttentionParams& attn,
                                              const kernels::StreamingParams& p,
                                              const SelectionBuffers& out);

// block_sparse: mean-pooled query block . mean-pooled key block (no scale), causal over
// blocks, blocks 0, the diagonal block and the one below it forced, the top
// `block_budget` (at least the forced ones) per query block. Lists per query head.
// REQUIRES (InvalidArgument otherwise): q_offset a multiple of `block`, so that the
// call's query blocks are the reference's position blocks.
absl::StatusOr<SelectionSizes> BlockSparseSelectSizes(const AttentionParams& attn,
                                                      const kernels::BlockSparseParams& p);
absl::StatusOr<BlockSelection> SelectBlockSparse(const AttentionParams& attn,
                                                 const kernels::BlockSparseParams& p,
                                                 const SelectionBuffers& out);

// xattention: antidiagonal sums of each stride x stride cell (query r*S + S-1-t with key
// c*S + t), causal softmax per reduced row with scale 1/(sqrt(D) S), block mass, then per
// query block the sink and diagonal blocks plus the heaviest blocks until the running
// mass reaches threshold x the row's total. Lists per query head, lengths vary.
// REQUIRES (InvalidArgument otherwise): q_offset a multiple of `block`; stride x head_dim
// small enough for one CTA's shared memory (stride 8 runs with every head dim).
// The workspace holds one float per (reduced row, causal key block) of every query head
// (about 0.9 GB at 128K, Hq 28, block 128, stride 8).
absl::StatusOr<SelectionSizes> XAttentionSelectSizes(const AttentionParams& attn,
                                                     const kernels::XAttentionParams& p);
absl::StatusOr<BlockSelection> SelectXAttention(const AttentionParams& attn,
                                                const kernels::XAttentionParams& p,
                                                const SelectionBuffers& out);

// The reference's estimation_flops of each method at this shape (host arithmetic from
// the parameters, the same formulas as kernels/cpu). flexprefill's original variant
// depends on how many heads were query-aware: pass that count (read from head_kinds).
absl::StatusOr<double> EstimationFlops(const AttentionParams& attn,
                                       const kernels::VerticalSlashParams& p);
absl::StatusOr<double> EstimationFlops(const AttentionParams& attn,
                                       const kernels::FlexPrefillParams& p,
                                       int64_t query_aware_heads = 0);
absl::StatusOr<double> EstimationFlops(const AttentionParams& attn,
                                       const kernels::BlockSparseParams& p);
absl::StatusOr<double> EstimationFlops(const AttentionParams& attn,
                                       const kernels::XAttentionParams& p);
absl::StatusOr<double> EstimationFlops(const AttentionParams& attn,
                                       const kernels::StreamingParams& p);

}  // namespace sf::cuda

#endif  // SF_KERNELS_CUDA_ATTENTION_SELECT_H_
