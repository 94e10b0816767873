// Maps a compression target (1 / (1 - sparsity)) to a method's native budget parameters
// at a sequence length, for the spec parser; the rules are the kernels' (one mapping for
// specs, fidelity and the evaluator). Rules: docs/methods.md.
#ifndef SF_COMMON_BUDGET_MAPPING_H_
#define SF_COMMON_BUDGET_MAPPING_H_

#include <cstdint>

#include "absl/status/status.h"
#include "common/job.h"
#include "common/method_catalog.h"

namespace sf {

enum class CompressionPhase { kPrefill, kDecode };

// Sets the budget parameters of `method` in `params` for `compression` at
// `sequence_length` in `phase`, with the kernels' closed forms
// (kernels::ParamsForCompression: causal pairs kept in prefill, cached tokens read per
// step in decode), so that a job's nominal compression is what its method computes. `params`
// already holds every other parameter resolved (defaults included), because some rules depend on
// them (block and page sizes, sinks). REQUIRES: compression >= 1, sequence_length >= 1. Returns
// InvalidArgument when the method has no budget (dense) or no closed-form mapping (flexprefill's
// gamma, xattention's threshold: give those natively).
absl::Status ApplyCompressionTarget(const MethodInfo& method, int64_t sequence_length,
                                    double compression, CompressionPhase phase, ParamMap* params);

// Whether `param` of `method` is one ApplyCompressionTarget sets (so a spec that gives
// `compression` must not give it too).
bool IsSetByCompression(const MethodInfo& method, absl::string_view param);

// Whether ApplyCompressionTarget supports `method` (for validation before expansion).
bool SupportsCompressionTarget(const MethodInfo& method);

}  // namespace sf

#endif  // SF_COMMON_BUDGET_MAPPING_H_
