// oracle_topk (both phases): the exact top-k keys per query by q.k, the upper bound of
// any token-selection method at a per-query budget (docs/methods.md).
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
    {"top_k", ParamType::kInt, "", 1, kInf, "", "keys kept per query (exact top-k by q.k)"},
};

double TopKPairs(int64_t k, int64_t n) {
  const int64_t full = std::min(n, k);
  return CausalPairs(full) + static_cast<double>(n - full) * k;
}

absl::Status Map(const ParamReader&, double c, int64_t n, Phase phase, ParamMap* out) {
  if (phase == Phase::kDecode) {
    (*out)["top_k"] = std::clamp<int64_t>(std::llround(n / c), 1, n);
    return absl::OkStatus();
  }
  const double total = CausalPairs(n);
  (*out)["top_k"] =
      c <= 1.0 ? n : ClosestBudget(1, n, c, [&](int64_t k) { return total / TopKPairs(k, n); });
  return absl::OkStatus();
}

absl::StatusOr<double> Nominal(const ParamReader& r, int64_t n, Phase phase) {
  SF_ASSIGN_OR_RETURN(const int64_t k, r.Int("top_k"));
  if (phase == Phase::kDecode) return static_cast<double>(n) / std::min(n, k);
  return CausalPairs(n) / TopKPairs(k, n);
}

// The exact scores of every causal pair.
double Flops(const EstimationInput& in) {
  const double l = static_cast<double>(in.seq_len);
  return in.pair_flops * l * (l + 1.0) / 2.0;
}

}  // namespace

MethodInfo OracleTopKMethod() {
  return {.name = "oracle_topk",
          .phases = PhaseSet::Both(),
          .default_phases = {},
          .budget_param = "top_k",
          .params = kParams,
          .summary = "exact top-k keys per query: the upper bound for selection methods",
          .budget_rule = BudgetRule::kClosedForm,
          .map_compression = Map,
          .nominal_compression = Nominal,
          .estimation_flops = Flops};
}

}  // namespace sf::methods
