// The column and diagonal mass of the last queries' causal softmax rows on the GPU (the
// reference's ComputeLineMass), shared by vertical_slash and flexprefill. Internal to
// kernels/cuda/attention.
#ifndef SF_KERNELS_CUDA_ATTENTION_SELECT_LINE_MASS_CUH_
#define SF_KERNELS_CUDA_ATTENTION_SELECT_LINE_MASS_CUH_

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/attention/params.h"
#include "kernels/cuda/attention/select_host.h"

namespace sf::cuda::select_internal {

// Device scratch of one line-mass computation; LineMassWorkspace says how much.
struct LineMassBuffers {
  float* part_m = nullptr;     // [hq][rows_pad][chunks] row max per key chunk (log2 units)
  float* part_l = nullptr;     // [hq][rows_pad][chunks] row sum per key chunk
  float* lse2 = nullptr;       // [hq][rows_pad] row log2-sum-exp2
  float* columns = nullptr;    // [hq][lk] output: column mass (sum over the rows)
  float* diagonals = nullptr;  // [hq][lk] output: diagonal mass by offset pos - key
};

// Takes the pieces for `last_q` rows from `carver` (null base: sizes only).
LineMassBuffers LineMassWorkspace(const PrefillShape& s, int64_t last_q, WorkspaceCarver* carver);

// Enqueues on attn.stream: columns[h][j] = sum over the last `last_q` query rows i of
// head h of softmax_i(j) (causal, scale 1/sqrt(D), j <= pos_i), and diagonals[h][pos_i - j]
// likewise. REQUIRES 1 <= last_q <= s.lq. Float32 sums (atomics: the order of additions,
// and so the last bits, can differ between runs).
absl::Status LaunchLineMass(const AttentionParams& attn, const PrefillShape& s, int64_t last_q,
                            const LineMassBuffers& b);
// One of its two steps: the rows' log-sum-exps (pass 1, !sums) or the sums (pass 2, after
// pass 1 on the same buffers). For timing them apart.
absl::Status LaunchLineMassPass(const AttentionParams& attn, const PrefillShape& s, int64_t last_q,
                                const LineMassBuffers& b, bool sums);

}  // namespace sf::cuda::select_internal

#endif  // SF_KERNELS_CUDA_ATTENTION_SELECT_LINE_MASS_CUH_
