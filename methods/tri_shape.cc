// tri_shape (prefill): attention sinks plus a local window, and the last `last_q`
// queries attend densely (the Tri-shape pattern of SCBench / MInference;
// docs/methods.md).
#include <algorithm>
#include <limits>

#include "common/status.h"
#include "methods/method_list.h"
#include "methods/params.h"

namespace sf::methods {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

constexpr MethodParam kParams[] = {
    {"sink", ParamType::kInt, "4", 0, kInf, "", "first tokens always kept"},
    {"last_q", ParamType::kInt, "64", 0, kInf, "",
     "last queries of the prompt that attend to every earlier key"},
    {"window", ParamType::kInt, "", 1, kInf, "",
     "local window in tokens (the query's own included)"},
};

// Causal pairs of a prefill of n tokens: rows before the last min(last_q, n) keep
// min(i + 1, sink + window) keys, the last ones every key.
double TriShapePairs(int64_t sink, int64_t window, int64_t last_q, int64_t n) {
  const int64_t dense_rows = std::min(last_q, n);
  const int64_t shaped = n - dense_rows;
  const int64_t span = sink + window;
  const int64_t full = std::min(shaped, span);  // A-shape rows that see every earlier key
  const double a_shape = CausalPairs(full) + static_cast<double>(shaped - full) * span;
  return a_shape + (CausalPairs(n) - CausalPairs(shaped));
}

absl::Status Map(const ParamReader& r, double c, int64_t n, Phase, ParamMap* out) {
  SF_ASSIGN_OR_RETURN(const int64_t sink, r.Int("sink"));
  SF_ASSIGN_OR_RETURN(const int64_t last_q, r.Int("last_q"));
  const double total = CausalPairs(n);
  (*out)["window"] = c <= 1.0 ? n : ClosestBudget(1, n, c, [&](int64_t w) {
    return total / TriShapePairs(sink, w, last_q, n);
  });
  return absl::OkStatus();
}

absl::StatusOr<double> Nominal(const ParamReader& r, int64_t n, Phase) {
  SF_ASSIGN_OR_RETURN(const int64_t sink, r.Int("sink"));
  SF_ASSIGN_OR_RETURN(const int64_t last_q, r.Int("last_q"));
  SF_ASSIGN_OR_RETURN(const int64_t window, r.Int("window"));
  return CausalPairs(n) / TriShapePairs(sink, window, last_q, n);
}

}  // namespace

MethodInfo TriShapeMethod() {
  return {.name = "tri_shape",
          .phases = PhaseSet::Of(Phase::kPrefill),
          .default_phases = PhaseSet::Of(Phase::kPrefill),
          .budget_param = "window",
          .params = kParams,
          .summary = "Tri-shape: sinks, a local window, and the last queries dense",
          .budget_rule = BudgetRule::kClosedForm,
          .map_compression = Map,
          .nominal_compression = Nominal,
          // The pattern is fixed: nothing is estimated.
          .estimation_flops = [](const EstimationInput&) { return 0.0; }};
}

}  // namespace sf::methods
