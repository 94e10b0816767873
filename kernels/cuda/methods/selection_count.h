// What the engine's method hooks need around the selection and attention kernels of
// kernels/cuda/attention when a method runs on the device: the query-key pairs a device
// selection names (counted on the device, as the CPU reference's SelectedPairs counts
// them), how many heads of a mixed selection took each form, and the merge of two
// outputs by head kind. Nothing here synchronises with the host; launches go to `stream`.
#ifndef SF_KERNELS_CUDA_METHODS_SELECTION_COUNT_H_
#define SF_KERNELS_CUDA_METHODS_SELECTION_COUNT_H_

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/attention/params.h"
#include "kernels/cuda/attention/selection.h"

namespace sf::cuda {

// The rows a count covers: call rows [0, num_queries), row i at position q_offset + i.
struct CountedRows {
  int64_t q_offset = 0;
  int64_t num_queries = 0;
  int32_t num_q_heads = 0;  // lists per KV head count once per query head of the group
};

// Adds to *pairs (device) the pairs of `lines`: for each list's query heads and rows, the
// keys k <= position that are one of the list's columns or at one of its diagonal
// offsets. Lists sorted, no duplicates (selection.h). InvalidArgument for bad sizes,
// Internal on a launch error.
absl::Status CountLinePairs(const LineSelection& lines, const CountedRows& rows,
                            unsigned long long* pairs, cudaStream_t stream);

// Adds to *pairs the pairs of `blocks`: key blocks before the query block are whole, the
// diagonal block causal, later ones nothing. REQUIRES rows.q_offset a multiple of
// blocks.block (the call's query blocks are position blocks).
absl::Status CountBlockPairs(const BlockSelection& blocks, const CountedRows& rows,
                             unsigned long long* pairs, cudaStream_t stream);

// Adds to *count the heads h in [0, num_heads) with head_kinds[h] == kind.
absl::Status CountHeadsOfKind(const int32_t* head_kinds, int32_t num_heads, HeadSelectionKind kind,
                              unsigned long long* count, cudaStream_t stream);

// Copies, for every query row and every query head h with head_kinds[h] == kind, the
// head's head_dim bf16 outputs from `src` into `dst`; both have the layout of
// p.out (p.out_row_stride, p.out_head_stride, p.num_queries, p.num_q_heads, p.head_dim).
absl::Status CopyHeadsOfKind(const AttentionParams& p, const void* src, void* dst,
                             const int32_t* head_kinds, HeadSelectionKind kind);

}  // namespace sf::cuda

#endif  // SF_KERNELS_CUDA_METHODS_SELECTION_COUNT_H_
