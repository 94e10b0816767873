// vertical_slash's parameters, typed: the one declaration its CPU selection
// (kernels/cpu/methods/vertical_slash.cc) and its CUDA selection
// (kernels/cuda/attention/select_lines.cu) read. Names, defaults and bounds are the registry's
// (methods/vertical_slash.cc).
#ifndef SF_KERNELS_CPU_METHODS_VERTICAL_SLASH_H_
#define SF_KERNELS_CPU_METHODS_VERTICAL_SLASH_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/job.h"
#include "kernels/cpu/method_params.h"
#include "methods/params.h"

namespace sf::kernels {

struct VerticalSlashParams {
  int64_t last_q = 256;
  int64_t sink = 4;    // first columns always kept (counted in `verticals`)
  int64_t local = 64;  // diagonals 0..local-1 always kept (counted in `slashes`)
  int64_t verticals = 0;
  int64_t slashes = 0;  // = verticals when the map does not give it
};

// The typed parameters read through `reader` (defaults filled, types and the
// registry's bounds checked). InvalidArgument naming the parameter otherwise.
absl::StatusOr<VerticalSlashParams> VerticalSlashParamsFrom(const ParamReader& reader);

// The same from a ParamMap of this method; a parameter it does not declare is
// InvalidArgument too.
absl::StatusOr<VerticalSlashParams> VerticalSlashParamsFrom(const ParamMap& params);

// The CPU selection bound to `p` as the CUDA selection takes it: the registry's bounds
// are not checked here (ParseMethodParams checks them); the selection's own checks run
// when it runs. For checking a CUDA selection against the reference.
MethodParams VerticalSlashMethodParams(const VerticalSlashParams& p);

}  // namespace sf::kernels

#endif  // SF_KERNELS_CPU_METHODS_VERTICAL_SLASH_H_
