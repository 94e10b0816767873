// streaming's parameters, typed: the one declaration its CPU selection
// (kernels/cpu/methods/streaming.cc) and its CUDA selection
// (kernels/cuda/attention/select_lines.cu) read. Names, defaults and bounds are the registry's
// (methods/streaming.cc).
#ifndef SF_KERNELS_CPU_METHODS_STREAMING_H_
#define SF_KERNELS_CPU_METHODS_STREAMING_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/job.h"
#include "kernels/cpu/method_params.h"
#include "methods/params.h"

namespace sf::kernels {

struct StreamingParams {
  int64_t sink = 4;
  int64_t window = 0;  // includes the query's own token
};

// The typed parameters read through `reader` (defaults filled, types and the
// registry's bounds checked). InvalidArgument naming the parameter otherwise.
absl::StatusOr<StreamingParams> StreamingParamsFrom(const ParamReader& reader);

// The same from a ParamMap of this method; a parameter it does not declare is
// InvalidArgument too.
absl::StatusOr<StreamingParams> StreamingParamsFrom(const ParamMap& params);

// The CPU selection bound to `p` as the CUDA selection takes it: the registry's bounds
// are not checked here (ParseMethodParams checks them); the selection's own checks run
// when it runs. For checking a CUDA selection against the reference.
MethodParams StreamingMethodParams(const StreamingParams& p);

}  // namespace sf::kernels

#endif  // SF_KERNELS_CPU_METHODS_STREAMING_H_
