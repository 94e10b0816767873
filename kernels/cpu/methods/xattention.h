// xattention's parameters, typed, and its block mass: the one declaration its CPU
// selection (kernels/cpu/methods/xattention.cc) and its CUDA selection
// (kernels/cuda/attention/select_xattention.cu) read. Names, defaults and bounds are
// the registry's (methods/xattention.cc).
#ifndef SF_KERNELS_CPU_METHODS_XATTENTION_H_
#define SF_KERNELS_CPU_METHODS_XATTENTION_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/method_params.h"
#include "methods/params.h"

namespace sf::kernels {

struct XAttentionParams {
  int64_t block = 128;
  int64_t stride = 8;
  double threshold = 0.9;
};

// The typed parameters read through `reader` (defaults filled, types and the
// registry's bounds checked). InvalidArgument naming the parameter otherwise.
absl::StatusOr<XAttentionParams> XAttentionParamsFrom(const ParamReader& reader);

// The same from a ParamMap of this method; a parameter it does not declare is
// InvalidArgument too.
absl::StatusOr<XAttentionParams> XAttentionParamsFrom(const ParamMap& params);

// The CPU selection bound to `p` as the CUDA selection takes it: the registry's bounds
// are not checked here (ParseMethodParams checks them); the selection's own checks run
// when it runs. For checking a CUDA selection against the reference.
MethodParams XAttentionMethodParams(const XAttentionParams& p);

namespace internal {

// XAttention's antidiagonal block mass per query head and query block, mass[h][qb][kb]
// (what the selection thresholds; the GPU test compares near-ties with it).
struct BlockMass {
  std::vector<std::vector<std::vector<double>>> mass;
  double flops = 0;  // all heads
};
BlockMass ComputeXAttentionMass(const AttentionInput& in, int64_t block, int64_t stride);

}  // namespace internal

}  // namespace sf::kernels

#endif  // SF_KERNELS_CPU_METHODS_XATTENTION_H_
