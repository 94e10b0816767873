#include "common/budget_mapping.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace sf {

bool SupportsCompressionTarget(const MethodInfo& method) {
  return method.budget_rule == BudgetRule::kClosedForm;
}

bool IsSetByCompression(const MethodInfo& method, absl::string_view param) {
  if (param == method.budget_param) return true;
  const MethodParam* p = FindParam(method, param);
  return p != nullptr && p->set_by_compression;
}

absl::Status ApplyCompressionTarget(const MethodInfo& method, int64_t sequence_length,
                                    double compression, Phase phase, ParamMap* params) {
  if (method.budget_rule == BudgetRule::kNone) {
    return absl::InvalidArgumentError(
        absl::StrCat(method.name, " attention has no budget; remove `compression` from it"));
  }
  if (!SupportsCompressionTarget(method)) {
    return absl::InvalidArgumentError(
        absl::StrCat(method.name, " sets its budget adaptively by `", method.budget_param,
                     "`, which has no closed-form compression mapping; give `", method.budget_param,
                     "` values instead of `compression`"));
  }
  // The closed forms count the causal pairs each budget keeps, so the job's nominal
  // compression is what the method computes (a window of L / c keeps far more than 1 / c
  // of a causal prefill).
  absl::StatusOr<ParamMap> mapped =
      ParamsForCompression(method.name, *params, compression, sequence_length, phase);
  if (!mapped.ok()) return mapped.status();
  *params = *std::move(mapped);
  return absl::OkStatus();
}

}  // namespace sf
