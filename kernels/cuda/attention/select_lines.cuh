// Per-head top-k of line scores into LineSelection lists (internal to
// kernels/cuda/attention): fixed counts (vertical_slash) written in place, or counts from
// the cumulative mass (flexprefill) written to staging and packed.
#ifndef SF_KERNELS_CUDA_ATTENTION_SELECT_LINES_CUH_
#define SF_KERNELS_CUDA_ATTENTION_SELECT_LINES_CUH_

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cpu/methods/flexprefill.h"
#include "kernels/cuda/attention/params.h"
#include "kernels/cuda/attention/select.h"

namespace sf::cuda::select_internal {

struct LineTopKArgs {
  int n = 0;                         // scores per head (max_kv_length)
  const float* columns = nullptr;    // [heads][n]
  const float* diagonals = nullptr;  // [heads][n]
  int forced_columns = 0;            // the first forced_columns indices are forced
  int forced_diagonals = 0;
  int k_columns = 0;  // entries kept (cover mode: the least kept)
  int k_diagonals = 0;
  // Cover mode (cover_target >= 0): k = max(k, cover count of the scores under
  // cover_target, forced), or n when cover_all.
  double cover_target = -1;
  bool cover_all = false;
  // fixed_k: lists go to column_lists + h * k_columns (the final CSR), offsets written
  // here. Otherwise lists go to staging column_lists + h * n and counts to column_counts;
  // LaunchPackLists writes offsets and the final lists.
  bool fixed_k = true;
  int32_t* column_lists = nullptr;
  int32_t* diagonal_lists = nullptr;
  int32_t* column_offsets = nullptr;
  int32_t* diagonal_offsets = nullptr;
  int32_t* column_counts = nullptr;
  int32_t* diagonal_counts = nullptr;
  // Staging mode only: heads whose kind (HeadSelectionKind) is not kLines get no lines.
  const int32_t* head_kinds = nullptr;
};

absl::Status LaunchLineTopK(const LineTopKArgs& args, int heads, cudaStream_t stream);
absl::Status LaunchPackLists(const LineTopKArgs& args, int heads, int32_t* columns,
                             int32_t* diagonals, cudaStream_t stream);

// FlexPrefillSelectSizes for variant=original (select_flexprefill.cu).
absl::StatusOr<SelectionSizes> FlexPrefillOriginalSizes(const AttentionParams& attn,
                                                        const kernels::FlexPrefillParams& p);

}  // namespace sf::cuda::select_internal

#endif  // SF_KERNELS_CUDA_ATTENTION_SELECT_LINES_CUH_
