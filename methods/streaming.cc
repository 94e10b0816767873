// streaming (A-shape; both phases): attention sinks plus a local window
// (StreamingLLM; docs/methods.md).
#include <algorithm>
#include <cmath>
#include <limits>

#include "common/status.h"
#include "methods/method_list.h"
#include "methods/params.h"

namespace sf::methods {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

constexpr MethodParam kParams[] = {
    {"sink", ParamType::kInt, "4", 0, kInf, "", "first tokens always kept"},
    {"window", ParamType::kInt, "", 1, kInf, "", "local window in tokens"},
};

// Causal pairs covered by sinks + a window (window counts the query itself).
double StreamingPairs(int64_t sink, int64_t window, int64_t n) {
  const int64_t span = sink + window;
  const int64_t full = std::min(n, span);  // rows that see every earlier key
  return CausalPairs(full) + static_cast<double>(n - full) * span;
}

absl::Status Map(const ParamReader& r, double c, int64_t n, Phase phase, ParamMap* out) {
  SF_ASSIGN_OR_RETURN(const int64_t sink, r.Int("sink"));
  int64_t window = 0;
  if (phase == Phase::kDecode) {
    // One step attends sink + window tokens of the context.
    window = std::clamp<int64_t>(std::llround(n / c) - sink, 1, n);
  } else {
    const double total = CausalPairs(n);
    window = c <= 1.0 ? n : ClosestBudget(1, n, c, [&](int64_t w) {
      return total / StreamingPairs(sink, w, n);
    });
  }
  (*out)["window"] = window;
  return absl::OkStatus();
}

absl::StatusOr<double> Nominal(const ParamReader& r, int64_t n, Phase phase) {
  SF_ASSIGN_OR_RETURN(const int64_t sink, r.Int("sink"));
  SF_ASSIGN_OR_RETURN(const int64_t window, r.Int("window"));
  if (phase == Phase::kDecode) {
    return std::max(1.0, static_cast<double>(n) / std::min(n, sink + window));
  }
  return CausalPairs(n) / StreamingPairs(sink, window, n);
}

}  // namespace

MethodInfo StreamingMethod() {
  return {.name = "streaming",
          .phases = PhaseSet::Both(),
          .default_phases = {},
          .budget_param = "window",
          .params = kParams,
          .summary = "A-shape: attention sinks plus a local window",
          .budget_rule = BudgetRule::kClosedForm,
          .map_compression = Map,
          .nominal_compression = Nominal,
          .estimation_flops = [](const EstimationInput&) { return 0.0; }};
}

}  // namespace sf::methods
