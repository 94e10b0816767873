#include "tasks/fit.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace sf::tasks {
namespace {

struct Point {
  int64_t n;
  int64_t t;
};

}  // namespace

absl::StatusOr<FitResult> FitUnits(const Tokenizer& tokenizer, const PromptBudget& budget,
                                   int64_t min_units, int64_t max_units,
                                   const std::function<std::string(int64_t)>& render) {
  SF_RETURN_IF_ERROR(budget.Validate());
  const int64_t hi = budget.MaxPromptTokens();
  const int64_t lo = budget.MinPromptTokens();
  // Aim slightly under the ceiling so that boundary effects rarely overshoot, and accept
  // anything within 2% of the window below it.
  const int64_t accept_lo = std::max(lo, hi - std::max<int64_t>(4, (hi - lo) / 50));
  const int64_t target = std::max(lo, hi - std::max<int64_t>(1, (hi - lo) / 200));
  FitResult result;
  auto count = [&](int64_t n, std::string* text = nullptr) {
    std::string s = render(n);
    ++result.tokenizations;
    const int64_t t = tokenizer.CountTokens(s);
    if (text != nullptr) *text = std::move(s);
    return t;
  };
  if (max_units < min_units) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the task has only ", max_units, " filler units but needs at least ", min_units));
  }
  std::string base_text;
  const Point base{min_units, count(min_units, &base_text)};
  if (base.t > hi) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the fixed parts of the prompt take ", base.t, " tokens, more than the ", hi,
        " the budget allows (length ", budget.target_length,
        "): raise the length or make the task smaller (fewer questions, chains or words)"));
  }
  if (base.t >= accept_lo || max_units == min_units) {
    if (base.t < lo) {
      return absl::FailedPreconditionError(absl::StrCat("the prompt cannot be filled: it has ",
                                                        base.t, " tokens, the minimum is ", lo));
    }
    result.units = min_units;
    result.tokens = base.t;
    return result;
  }
  // Probe: a prefix of units sized by characters, so the first estimate of tokens per
  // unit is good without tokenizing more than ~32K characters.
  const double chars_per_token =
      std::max(0.5, static_cast<double>(base_text.size()) / std::max<int64_t>(1, base.t));
  const double want_chars = std::min(32768.0, (target - base.t) * chars_per_token);
  int64_t k = 1;
  while (min_units + k < max_units) {
    const double extra = static_cast<double>(render(min_units + k).size()) - base_text.size();
    if (extra >= want_chars) break;
    k = std::min(max_units - min_units,
                 std::max(k * 2, static_cast<int64_t>(k * want_chars / std::max(1.0, extra))));
  }
  k = std::min(k, max_units - min_units);
  Point below = base;
  Point above{max_units + 1, INT64_MAX};
  const Point probe{min_units + k, count(min_units + k)};
  double rate = std::max(1e-3, static_cast<double>(probe.t - base.t) / k);
  if (probe.t <= hi) {
    below = probe;
  } else {
    above = probe;
  }
  for (int iter = 0; iter < 64; ++iter) {
    if (below.t >= accept_lo || above.n == below.n + 1 ||
        (below.n == max_units && above.n > max_units)) {
      if (below.t < lo) {
        if (below.n == max_units) {
          return absl::FailedPreconditionError(absl::StrCat(
              "not enough filler: all ", max_units, " units give ", below.t,
              " tokens, the minimum is ", lo, " (a larger dataset or a shorter length is needed)"));
        }
        return absl::FailedPreconditionError(
            absl::StrCat("filler units are too coarse for this length: ", below.n, " units give ",
                         below.t, " tokens, one more exceeds ", hi));
      }
      result.units = below.n;
      result.tokens = below.t;
      return result;
    }
    int64_t n;
    if (iter < 8) {
      n = below.n + static_cast<int64_t>(std::floor((target - below.t) / rate));
    } else {
      n = below.n + (std::min(above.n, max_units + 1) - below.n) / 2;
    }
    n = std::clamp<int64_t>(n, below.n + 1, std::min(above.n - 1, max_units));
    const Point p{n, count(n)};
    // Secant update from the nearest known point below.
    if (p.n != below.n && p.t != below.t) {
      const double r = static_cast<double>(p.t - below.t) / (p.n - below.n);
      if (r > 0) rate = r;
    }
    if (p.t <= hi) {
      below = p;
    } else {
      above = p;
    }
  }
  return absl::InternalError(absl::StrCat("length search did not converge: ", below.n,
                                          " units give ", below.t, " tokens, window [", lo, ", ",
                                          hi, "]"));
}

absl::StatusOr<Sample> BuildFitted(const std::string& task, uint64_t seed, int64_t index,
                                   const Tokenizer& tokenizer, const PromptBudget& budget,
                                   int64_t min_units, int64_t max_units,
                                   const std::function<Sample(int64_t)>& build) {
  absl::StatusOr<FitResult> fit =
      FitUnits(tokenizer, budget, min_units, max_units, [&](int64_t n) { return build(n).prompt; });
  if (!fit.ok()) {
    return Annotate(fit.status(),
                    absl::StrCat(task, " sample ", index, " at length ", budget.target_length));
  }
  Sample sample = build(fit->units);
  sample.task = task;
  sample.seed = seed;
  sample.index = index;
  sample.target_length = budget.target_length;
  sample.prompt_tokens = fit->tokens;
  sample.filler_units = fit->units;
  return sample;
}

}  // namespace sf::tasks
