// dense: full causal attention, the baseline of every phase (docs/methods.md).
#include "methods/method_list.h"

namespace sf::methods {

MethodInfo DenseMethod() {
  return {.name = "dense",
          .phases = PhaseSet::Both(),
          .default_phases = PhaseSet::Both(),
          .budget_param = "",
          .params = {},
          .summary = "full causal attention",
          .budget_rule = BudgetRule::kNone,
          .estimation_flops = [](const EstimationInput&) { return 0.0; }};
}

}  // namespace sf::methods
