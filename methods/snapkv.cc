// snapkv and ada_snapkv (decode): KV eviction after prefill by pooled
// observation-window attention (the study's SnapKV and Ada-SnapKV; docs/methods.md).
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

constexpr MethodParam kSnapKvParams[] = {
    {"window", ParamType::kInt, "256", 1, kInf, "", "observation window (last queries)"},
    {"pool", ParamType::kInt, "21", 1, 1025, "", "average-pooling kernel over scores (odd)"},
    {"keep_first", ParamType::kInt, "4", 0, kInf, "", "first tokens always kept"},
    {"keep_last", ParamType::kInt, "128", 0, kInf, "", "last tokens always kept"},
    {"token_capacity", ParamType::kInt, "", 1, kInf, "", "KV entries kept per head"},
};
constexpr MethodParam kAdaSnapKvParams[] = {
    {"window", ParamType::kInt, "256", 1, kInf, "", "observation window (last queries)"},
    {"pool", ParamType::kInt, "21", 1, 1025, "",
     "average-pooling kernel over the max-reduced scores (odd)"},
    {"keep_first", ParamType::kInt, "4", 0, kInf, "", "first tokens always kept"},
    {"keep_last", ParamType::kInt, "128", 0, kInf, "", "last tokens always kept"},
    {"floor", ParamType::kFloat, "0.2", 0, 1, "", "per-head floor as a fraction of capacity"},
    {"token_capacity", ParamType::kInt, "", 1, kInf, "",
     "average KV entries kept per head (adaptive across a layer's heads)"},
};

absl::Status CheckPoolOdd(const ParamReader& r) {
  SF_ASSIGN_OR_RETURN(const int64_t pool, r.Int("pool"));
  if (pool % 2 == 0) {
    return absl::InvalidArgumentError(absl::StrCat("parameter 'pool' of method ", r.method().name,
                                                   " must be odd (centred pooling), got ", pool));
  }
  return absl::OkStatus();
}

// C = P / token_capacity (the study's sparsity 1 - capacity / L), in either phase. The
// capacity must hold the rows always kept, or every sample of the job would fail.
absl::Status Map(const ParamReader& r, double c, int64_t n, Phase, ParamMap* out) {
  const int64_t capacity = std::clamp<int64_t>(std::llround(n / c), 1, n);
  SF_ASSIGN_OR_RETURN(const int64_t first, r.Int("keep_first"));
  SF_ASSIGN_OR_RETURN(const int64_t last, r.Int("keep_last"));
  const int64_t forced = first + last;  // the first and last prompt rows, always kept
  if (capacity < std::min(forced, n)) {
    return absl::InvalidArgumentError(
        absl::StrCat(r.method().name, " at compression ", c, " and ", n, " tokens keeps ", capacity,
                     " rows per head, fewer than keep_first + keep_last (", forced,
                     ") that it always keeps: lower keep_last (now ", last,
                     ", the last prompt tokens kept whole) or the compression"));
  }
  (*out)["token_capacity"] = capacity;
  return absl::OkStatus();
}

absl::StatusOr<double> Nominal(const ParamReader& r, int64_t n, Phase) {
  SF_ASSIGN_OR_RETURN(const int64_t capacity, r.Int("token_capacity"));
  return std::max(1.0, static_cast<double>(n) / capacity);
}

// The observation window's queries scored against every prompt key, once after
// prefill: fused attention kernels never materialise those probabilities, so the
// method computes them again (as the worker records it).
double Flops(const EstimationInput& in) {
  const double l = static_cast<double>(in.seq_len);
  const double w = std::min<double>(static_cast<double>(in.settings.snapkv_window), l);
  return in.pair_flops * w * l;
}

}  // namespace

MethodInfo SnapKvMethod() {
  return {.name = "snapkv",
          .phases = PhaseSet::Of(Phase::kDecode),
          .default_phases = PhaseSet::Of(Phase::kDecode),
          .budget_param = "token_capacity",
          .params = kSnapKvParams,
          .summary = "KV eviction after prefill by pooled observation-window attention",
          .budget_rule = BudgetRule::kClosedForm,
          .check = CheckPoolOdd,
          .map_compression = Map,
          .nominal_compression = Nominal,
          .estimation_flops = Flops};
}

MethodInfo AdaSnapKvMethod() {
  return {.name = "ada_snapkv",
          .phases = PhaseSet::Of(Phase::kDecode),
          .default_phases = PhaseSet::Of(Phase::kDecode),
          .budget_param = "token_capacity",
          .params = kAdaSnapKvParams,
          .summary = "SnapKV with capacity spread adaptively across a layer's heads",
          .budget_rule = BudgetRule::kClosedForm,
          .check = CheckPoolOdd,
          .map_compression = Map,
          .nominal_compression = Nominal,
          .estimation_flops = Flops};
}

}  // namespace sf::methods
