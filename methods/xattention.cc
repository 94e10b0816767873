// xattention (prefill): blocks chosen by strided antidiagonal sums up to a mass
// threshold (XAttention; docs/methods.md).
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "methods/method_list.h"
#include "methods/params.h"

namespace sf::methods {
namespace {

constexpr MethodParam kParams[] = {
    {"block", ParamType::kInt, "128", 1, 4096, "", "block size"},
    {"stride", ParamType::kInt, "8", 1, 128, "", "antidiagonal stride"},
    {"threshold", ParamType::kFloat, "0.9", 0, 1, "", "cumulative mass per block row"},
};

double Flops(const EstimationInput& in) {
  const double stride = static_cast<double>(in.settings.xattn_stride);
  const double n = std::ceil(static_cast<double>(in.seq_len) / stride);
  // Strided q/k of dimension head_dim * stride over n x n causal positions.
  return in.pair_flops * stride * n * (n + 1.0) / 2.0;
}

}  // namespace

MethodInfo XAttentionMethod() {
  return {.name = "xattention",
          .phases = PhaseSet::Of(Phase::kPrefill),
          .default_phases = PhaseSet::Of(Phase::kPrefill),
          .budget_param = "threshold",
          .params = kParams,
          .summary = "blocks chosen by strided antidiagonal sums up to a mass threshold",
          .budget_rule = BudgetRule::kMassThreshold,
          .estimation_flops = Flops};
}

}  // namespace sf::methods
