#include "common/budget_mapping.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"

namespace sf {
namespace {

int64_t IntParam(const ParamMap& params, const std::string& name, int64_t fallback) {
  auto it = params.find(name);
  if (it == params.end()) return fallback;
  if (const int64_t* v = std::get_if<int64_t>(&it->second)) return *v;
  return fallback;
}

// Tokens each query keeps at compression c: ceil(L / c), at least 1.
int64_t TokenBudget(int64_t length, double compression) {
  return std::max<int64_t>(
      1, static_cast<int64_t>(std::ceil(static_cast<double>(length) / compression)));
}

}  // namespace

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
                                    double compression, ParamMap* params) {
  const std::string name = method.name;
  const int64_t budget = TokenBudget(sequence_length, compression);
  if (name == "block_sparse") {
    const int64_t block = std::max<int64_t>(1, IntParam(*params, "block", 16));
    const int64_t blocks = (sequence_length + block - 1) / block;
    (*params)["block_budget"] = std::max<int64_t>(
        1, static_cast<int64_t>(std::ceil(static_cast<double>(blocks) / compression)));
  } else if (name == "vertical_slash") {
    // Half the budget to columns, half to diagonals (each line covers about one key per query).
    const int64_t verticals = (budget + 1) / 2;
    (*params)["verticals"] = verticals;
    (*params)["slashes"] = std::max<int64_t>(1, budget - verticals);
  } else if (name == "streaming") {
    const int64_t sink = IntParam(*params, "sink", 4);
    (*params)["window"] = std::max<int64_t>(1, budget - sink);
  } else if (name == "snapkv" || name == "ada_snapkv") {
    (*params)["token_capacity"] = budget;
  } else if (name == "quest") {
    const int64_t page = std::max<int64_t>(1, IntParam(*params, "page", 16));
    (*params)["token_budget"] = std::max<int64_t>(page, (budget + page - 1) / page * page);
  } else if (name == "oracle_topk") {
    (*params)["top_k"] = budget;
  } else if (name == "dense") {
    return absl::InvalidArgumentError(
        "dense attention has no budget; remove `compression` from it");
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " sets its budget adaptively by `", method.budget_param,
                     "`, which has no closed-form compression mapping yet; give `",
                     method.budget_param, "` values instead of `compression`"));
  }
  return absl::OkStatus();
}

}  // namespace sf
