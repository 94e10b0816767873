// flexprefill (prefill): the smallest column/diagonal (or block) set reaching a mass
// gamma (the study's FlexPrefill, and the paper's query-aware variant; docs/methods.md).
#include <algorithm>
#include <limits>

#include "methods/method_list.h"

namespace sf::methods {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

constexpr MethodParam kParams[] = {
    {"gamma", ParamType::kFloat, "0.65", 0, 1, "",
     "cumulative attention mass to reach (the study's alpha: 0.65 in its config)"},
    {"tau", ParamType::kFloat, "0.1", 0, 1, "",
     "JS-distance threshold for query-aware heads (variant original)"},
    {"min_budget", ParamType::kInt, "512", 0, kInf, "",
     "columns and diagonals always kept per head (the study's config: 512)"},
    {"last_q", ParamType::kInt, "512", 1, kInf, "",
     "last queries used to estimate columns and diagonals (the study's approximation_size)"},
    {"block", ParamType::kInt, "128", 1, 4096, "",
     "block size of query-aware heads and of the classifying query block (variant original)"},
    {"variant", ParamType::kString, "study", 0, 0, "study|original",
     "study: vertical-slash only; original: query-aware head classification"},
};

double Flops(const EstimationInput& in) {
  const double l = static_cast<double>(in.seq_len);
  const double q = std::min<double>(static_cast<double>(in.settings.flex_last_block), l);
  return in.pair_flops * q * l;
}

}  // namespace

MethodInfo FlexPrefillMethod() {
  return {.name = "flexprefill",
          .phases = PhaseSet::Of(Phase::kPrefill),
          .default_phases = PhaseSet::Of(Phase::kPrefill),
          .budget_param = "gamma",
          .params = kParams,
          .summary = "smallest column/diagonal (or block) set reaching mass gamma",
          .budget_rule = BudgetRule::kMassThreshold,
          .estimation_flops = Flops};
}

}  // namespace sf::methods
