#include "common/budget_mapping.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/method_params.h"

namespace sf {

bool SupportsCompressionTarget(const MethodInfo& method) {
  const std::string name = method.name;
  return name == "block_sparse" || name == "vertical_slash" || name == "streaming" ||
         name == "snapkv" || name == "ada_snapkv" || name == "quest" || name == "oracle_topk";
}

bool IsSetByCompression(const MethodInfo& method, absl::string_view param) {
  if (param == method.budget_param) return true;
  return std::string(method.name) == "vertical_slash" && param == "slashes";
}

absl::Status ApplyCompressionTarget(const MethodInfo& method, int64_t sequence_length,
                                    double compression, CompressionPhase phase, ParamMap* params) {
  const std::string name = method.name;
  if (name == "dense") {
    return absl::InvalidArgumentError(
        "dense attention has no budget; remove `compression` from it");
  }
  if (!SupportsCompressionTarget(method)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " sets its budget adaptively by `", method.budget_param,
                     "`, which has no closed-form compression mapping; give `", method.budget_param,
                     "` values instead of `compression`"));
  }
  // The kernels' closed forms count the causal pairs each budget keeps, so the job's
  // nominal compression is what the method computes (a window of L / c keeps far more
  // than 1 / c of a causal prefill).
  absl::StatusOr<ParamMap> mapped = kernels::ParamsForCompression(
      name, *params, compression, sequence_length,
      phase == CompressionPhase::kDecode ? kernels::Phase::kDecode : kernels::Phase::kPrefill);
  if (!mapped.ok()) return mapped.status();
  if (name == "vertical_slash" && !mapped->contains("slashes")) {
    (*mapped)["slashes"] = mapped->at("verticals");  // explicit in the job: equal sizes
  }
  *params = *std::move(mapped);
  return absl::OkStatus();
}

}  // namespace sf
