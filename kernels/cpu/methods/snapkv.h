// snapkv's and ada_snapkv's parameters, typed, and the importance both rank tokens by:
// the one declaration their CPU selection (kernels/cpu/methods/snapkv.cc) reads and
// their CUDA selection (kernels/cuda/attention/snapkv.h) is checked against. Names,
// defaults and bounds are the registry's (methods/snapkv.cc).
#ifndef SF_KERNELS_CPU_METHODS_SNAPKV_H_
#define SF_KERNELS_CPU_METHODS_SNAPKV_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/method_params.h"
#include "methods/params.h"

namespace sf::kernels {

struct SnapKvParams {
  int64_t window = 256;
  int64_t pool = 21;
  int64_t keep_first = 4;
  int64_t keep_last = 128;
  int64_t token_capacity = 0;
  bool adaptive = false;  // ada_snapkv: adaptive allocation across KV heads with `floor`
  double floor = 0.2;
};

// The typed parameters read through `reader` (defaults filled, types and the
// registry's bounds checked); `adaptive` and `floor` for the method that declares
// `floor` (ada_snapkv). InvalidArgument naming the parameter otherwise.
absl::StatusOr<SnapKvParams> SnapKvParamsFrom(const ParamReader& reader);

// SnapKV importance per KV head over the prompt `keys` ([Hkv, P, D]) from the prompt's
// last queries `obs` ([Hq, W, D]): window- and group-reduced (mean; max when
// `adaptive`), pooled; independent of the capacity. REQUIRES Hq a multiple of Hkv and
// W <= P.
std::vector<std::vector<double>> SnapKvImportance(const SnapKvParams& p, const TensorView& obs,
                                                  const TensorView& keys);

// The CPU selection bound to `p` as the CUDA selection takes it: the registry's bounds
// are not checked here (ParseMethodParams checks them); the selection's own checks run
// when it runs. For checking a CUDA selection against the reference.
MethodParams SnapKvMethodParams(const SnapKvParams& p);

}  // namespace sf::kernels

#endif  // SF_KERNELS_CPU_METHODS_SNAPKV_H_
