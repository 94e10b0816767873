// vertical_slash (prefill): columns and diagonals chosen from the last queries'
// attention (MInference, as the study runs it; docs/methods.md).
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
    {"last_q", ParamType::kInt, "256", 1, kInf, "", "queries used to estimate the pattern"},
    {"sink", ParamType::kInt, "4", 0, kInf, "", "first columns always kept"},
    {"local", ParamType::kInt, "64", 0, kInf, "", "last diagonals always kept"},
    {"verticals", ParamType::kInt, "", 0, kInf, "", "vertical lines (columns) kept per head"},
    {"slashes", ParamType::kInt, "", 0, kInf, "",
     "slash lines (diagonals) kept per head (not given: equal to verticals)",
     /*set_by_compression=*/true},
};

// pairs ~ (v + s)(L + 1) / 2, so v = s = L / (2c); both are written, equal, so that a
// job says what it runs.
absl::Status Map(const ParamReader& r, double c, int64_t n, Phase, ParamMap* out) {
  SF_ASSIGN_OR_RETURN(const int64_t sink, r.Int("sink"));
  SF_ASSIGN_OR_RETURN(const int64_t local, r.Int("local"));
  const int64_t lo = std::min(n, std::max(sink, local));
  const int64_t lines = c <= 1.0 ? n : std::clamp<int64_t>(std::llround(n / (2.0 * c)), lo, n);
  (*out)["verticals"] = lines;
  (*out)["slashes"] = lines;
  return absl::OkStatus();
}

absl::StatusOr<double> Nominal(const ParamReader& r, int64_t n, Phase) {
  SF_ASSIGN_OR_RETURN(const int64_t verticals, r.Int("verticals"));
  int64_t slashes = verticals;  // the study sets both sizes equal
  if (r.Has("slashes")) {
    SF_ASSIGN_OR_RETURN(slashes, r.Int("slashes"));
  }
  const double pairs = 0.5 * static_cast<double>(verticals + slashes) * (n + 1);
  return std::max(1.0, CausalPairs(n) / pairs);
}

double Flops(const EstimationInput& in) {
  const double l = static_cast<double>(in.seq_len);
  const double q = std::min<double>(static_cast<double>(in.settings.vs_last_q), l);
  return in.pair_flops * q * l;
}

}  // namespace

MethodInfo VerticalSlashMethod() {
  return {.name = "vertical_slash",
          .phases = PhaseSet::Of(Phase::kPrefill),
          .default_phases = PhaseSet::Of(Phase::kPrefill),
          .budget_param = "verticals",
          .params = kParams,
          .summary = "columns and diagonals chosen from the last queries' attention (MInference)",
          .budget_rule = BudgetRule::kClosedForm,
          .map_compression = Map,
          .nominal_compression = Nominal,
          .estimation_flops = Flops};
}

}  // namespace sf::methods
