// block_sparse (prefill): the top key blocks per query block by mean-pooled q.k
// (MInference's block index, as the study uses it; docs/methods.md).
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
    {"block", ParamType::kInt, "16", 1, 4096, "", "query/key block size in tokens"},
    {"block_budget", ParamType::kInt, "", 1, kInf, "",
     "key blocks kept per query block (sink, diagonal and the block below it always kept)"},
};

// The study's _calculate_sparsity, at block level.
double BlockCompression(int64_t block, int64_t budget, int64_t n) {
  const int64_t nb = (n + block - 1) / block;
  const int64_t k = std::min(budget, nb);
  const double total = 0.5 * nb * (nb + 1);
  const double selected = 0.5 * k * (k + 1) + static_cast<double>(nb - k) * k;
  return total / selected;
}

absl::Status Map(const ParamReader& r, double c, int64_t n, Phase, ParamMap* out) {
  SF_ASSIGN_OR_RETURN(const int64_t block, r.Int("block"));
  const int64_t nb = (n + block - 1) / block;
  (*out)["block_budget"] =
      c <= 1.0 ? nb : ClosestBudget(std::min<int64_t>(3, nb), nb, c, [&](int64_t k) {
        return BlockCompression(block, k, n);
      });
  return absl::OkStatus();
}

absl::StatusOr<double> Nominal(const ParamReader& r, int64_t n, Phase) {
  SF_ASSIGN_OR_RETURN(const int64_t block, r.Int("block"));
  SF_ASSIGN_OR_RETURN(const int64_t budget, r.Int("block_budget"));
  return BlockCompression(block, budget, n);
}

double Flops(const EstimationInput& in) {
  const double nb =
      std::ceil(static_cast<double>(in.seq_len) / static_cast<double>(in.settings.block));
  return in.pair_flops * nb * (nb + 1.0) / 2.0;
}

}  // namespace

MethodInfo BlockSparseMethod() {
  return {.name = "block_sparse",
          .phases = PhaseSet::Of(Phase::kPrefill),
          .default_phases = PhaseSet::Of(Phase::kPrefill),
          .budget_param = "block_budget",
          .params = kParams,
          .summary = "top-k key blocks per query block by mean-pooled q.k",
          .budget_rule = BudgetRule::kClosedForm,
          .map_compression = Map,
          .nominal_compression = Nominal,
          .estimation_flops = Flops};
}

}  // namespace sf::methods
