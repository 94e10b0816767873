// The analysis' view of the cost model (common/model_cost.h): parameter counts of a shape,
// the Qwen2.5 shapes, each method's estimation (indexing) FLOPs and the closed form over
// decode steps; prefill and decode are reported apart.
#ifndef SF_ANALYSIS_FLOPS_H_
#define SF_ANALYSIS_FLOPS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/model_config.h"
#include "common/model_cost.h"
#include "methods/method.h"

namespace sf::analysis {

// The one model shape (common/model_config.h) and FLOPs breakdown
// (common/model_cost.h), under the names the analysis has always used.
using model::FlopsBreakdown;
using model::ModelShape;

// Qwen2.5 Instruct configurations (from their config.json files).
ModelShape Qwen25_7B();
ModelShape Qwen25_14B();
ModelShape Qwen25_32B();
ModelShape Qwen25_72B();

// Parameters of the matrix multiplies run per token: q/k/v/o projections (with
// biases), the gated MLP (3 matrices) and the LM head; model::CountParameters(s).Matmul().
// Embedding lookups and norms are not multiplies and are excluded.
double LinearParams(const ModelShape& s);
// Every parameter: LinearParams + input embedding (unless tied) + RMSNorm weights;
// model::CountParameters(s).Total(). This is the N of the scaling law.
double TotalParams(const ModelShape& s);

// Estimation (indexing) FLOPs of `method` for one sample: prefill methods over a
// prompt of `seq_len`, decode methods over `decode_tokens` steps. Each method's formula
// is in its registry file (methods/<name>.cc; docs/analysis.md lists them), with the
// per-method settings of sf::EstimationSettings (methods/method.h). Returns
// InvalidArgument for a method without a formula (pass the worker's measured figure
// instead).
absl::StatusOr<double> EstimationFlops(absl::string_view method, const ModelShape& s,
                                       int64_t seq_len, int64_t decode_tokens,
                                       const EstimationSettings& settings = {});

// The closed form over decode steps: a prompt of `seq_len` tokens then `decode_steps`
// decode steps, step t (0-based) attending to the L + t + 1 cached tokens, that is the
// cost model (common/model_cost.h) of decode_steps + 1 output tokens for attention, with
// prefill pairs L(L+1)/2 divided by `prefill_compression` and decode pairs divided by
// `decode_compression`. Linear FLOPs are 2 x LinearParams per prompt token and per step,
// without the norm weights the cost model counts. `indexing` is added as given. Results
// use model::CostModel (PointFlops in isoflops.h); this form is kept for closed-form
// studies by decode step.
// REQUIRES: compressions >= 1, seq_len >= 1, decode_steps >= 0.
FlopsBreakdown ComputeFlops(const ModelShape& s, int64_t seq_len, int64_t decode_steps,
                            double prefill_compression, double decode_compression, double indexing);

}  // namespace sf::analysis

#endif  // SF_ANALYSIS_FLOPS_H_
