// flexprefill's parameters, typed: the one declaration its CPU selection
// (kernels/cpu/methods/flexprefill.cc) and its CUDA selection
// (kernels/cuda/attention/select_lines.cu and select_flexprefill.cu) read. Names, defaults and
// bounds are the registry's (methods/flexprefill.cc).
#ifndef SF_KERNELS_CPU_METHODS_FLEXPREFILL_H_
#define SF_KERNELS_CPU_METHODS_FLEXPREFILL_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/job.h"
#include "kernels/cpu/method_params.h"
#include "methods/params.h"

namespace sf::kernels {

struct FlexPrefillParams {
  double gamma = 0.65;  // the study's config (alpha)
  double tau = 0.1;
  int64_t min_budget = 512;
  int64_t last_q = 512;
  int64_t block = 128;
  bool original = false;  // variant "original": query-aware head classification
};

// The typed parameters read through `reader` (defaults filled, types and the
// registry's bounds checked). InvalidArgument naming the parameter otherwise.
absl::StatusOr<FlexPrefillParams> FlexPrefillParamsFrom(const ParamReader& reader);

// The same from a ParamMap of this method; a parameter it does not declare is
// InvalidArgument too.
absl::StatusOr<FlexPrefillParams> FlexPrefillParamsFrom(const ParamMap& params);

// The CPU selection bound to `p` as the CUDA selection takes it: the registry's bounds
// are not checked here (ParseMethodParams checks them); the selection's own checks run
// when it runs. For checking a CUDA selection against the reference.
MethodParams FlexPrefillMethodParams(const FlexPrefillParams& p);

}  // namespace sf::kernels

#endif  // SF_KERNELS_CPU_METHODS_FLEXPREFILL_H_
