// quest (decode): per-step page selection by key min/max bounds (Quest, as the study
// runs it; docs/methods.md).
#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "methods/method_list.h"
#include "methods/params.h"

namespace sf::methods {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

constexpr MethodParam kParams[] = {
    {"page", ParamType::kInt, "16", 1, 4096, "", "tokens per page"},
    {"gqa_shared", ParamType::kBool, "true", 0, 0, "",
     "one page choice per GQA group instead of per query head"},
    {"token_budget", ParamType::kInt, "", 1, kInf, "", "tokens loaded per decode step"},
};

absl::Status CheckWholePages(const ParamReader& r) {
  if (!r.Has("token_budget")) return absl::OkStatus();
  SF_ASSIGN_OR_RETURN(const int64_t page, r.Int("page"));
  SF_ASSIGN_OR_RETURN(const int64_t budget, r.Int("token_budget"));
  if (budget % page != 0) {
    return absl::InvalidArgumentError(absl::StrCat("parameter 'token_budget' of method quest (",
                                                   budget, ") must be a multiple of 'page' (", page,
                                                   ")"));
  }
  return absl::OkStatus();
}

// C = L / token_budget, the budget in whole pages.
absl::Status Map(const ParamReader& r, double c, int64_t n, Phase, ParamMap* out) {
  SF_ASSIGN_OR_RETURN(const int64_t page, r.Int("page"));
  const int64_t pages = (n + page - 1) / page;
  (*out)["token_budget"] =
      page * (c <= 1.0 ? pages : std::clamp<int64_t>(std::llround(n / (c * page)), 1, pages));
  return absl::OkStatus();
}

absl::StatusOr<double> Nominal(const ParamReader& r, int64_t n, Phase) {
  SF_ASSIGN_OR_RETURN(const int64_t budget, r.Int("token_budget"));
  return std::max(1.0, static_cast<double>(n) / budget);
}

// Per step: 2 multiplies + max + add per dimension per page of the context.
double Flops(const EstimationInput& in) {
  const double l = static_cast<double>(in.seq_len);
  const double page = static_cast<double>(in.settings.quest_page);
  double pages = 0.0;
  for (int64_t t = 0; t < in.decode_tokens; ++t) {
    pages += std::ceil((l + static_cast<double>(t) + 1.0) / page);
  }
  return 2.0 * in.pair_flops * pages;
}

}  // namespace

MethodInfo QuestMethod() {
  return {.name = "quest",
          .phases = PhaseSet::Of(Phase::kDecode),
          .default_phases = PhaseSet::Of(Phase::kDecode),
          .budget_param = "token_budget",
          .params = kParams,
          .summary = "per-step page selection by key min/max bounds",
          .budget_rule = BudgetRule::kClosedForm,
          .check = CheckWholePages,
          .map_compression = Map,
          .nominal_compression = Nominal,
          .estimation_flops = Flops};
}

}  // namespace sf::methods
