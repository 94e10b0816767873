// The registry of attention methods: every MethodInfo (methods/method.h) in a stable
// order, and the operations every caller runs through it (spec validation, budget
// mapping, nominal compression, estimation FLOPs). No caller names a method.
#ifndef SF_METHODS_REGISTRY_H_
#define SF_METHODS_REGISTRY_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/job.h"
#include "common/phase.h"
#include "methods/method.h"

namespace sf {

// Every method, in a stable order (methods/method_list.h).
const std::vector<MethodInfo>& AllMethods();

// The method named `name`, or nullptr.
const MethodInfo* FindMethod(absl::string_view name);

// The parameter `param` of `method`, or nullptr.
const MethodParam* FindParam(const MethodInfo& method, absl::string_view param);

// The method named `name`; InvalidArgument naming it (and the list) otherwise.
absl::StatusOr<const MethodInfo*> LookUpMethod(absl::string_view name);

// Every parameter that has a default, at its default.
ParamMap DefaultParams(const MethodInfo& method);

// The baseline every phase is compared with: the method without a budget (full causal
// attention, "dense").
const MethodInfo& BaselineMethod();

// The budget of `method` for `compression` at `seq_len` tokens in `phase`, written
// into a copy of `params` (the closed form of the method's file: nominal compression).
// Compression 1 gives the dense budget; budgetless methods return `params` unchanged.
// InvalidArgument: unknown method or parameter, bad values, compression < 1,
// seq_len < 1. FailedPrecondition: a mass-threshold method (its compression depends on
// the data; calibrate it, as sfctl fidelity does, or give the threshold natively).
absl::StatusOr<ParamMap> ParamsForCompression(absl::string_view method, const ParamMap& params,
                                              double compression, int64_t seq_len,
                                              Phase phase = Phase::kPrefill);

// The nominal compression (causal query-key pairs / pairs computed in prefill; cached
// tokens / tokens read per decode step) of `params` at `seq_len`: the inverse of
// ParamsForCompression. Budgetless methods: 1. Mass-threshold methods:
// FailedPrecondition. Bad parameters: InvalidArgument.
absl::StatusOr<double> NominalCompression(absl::string_view method, const ParamMap& params,
                                          int64_t seq_len, Phase phase = Phase::kPrefill);

// Estimation (indexing) FLOPs of `method` for one sample: prefill methods over a
// prompt of `input.seq_len`, decode methods over `input.decode_tokens` steps.
// InvalidArgument for a method without a formula.
absl::StatusOr<double> EstimationFlops(absl::string_view method, const EstimationInput& input);

}  // namespace sf

#endif  // SF_METHODS_REGISTRY_H_
