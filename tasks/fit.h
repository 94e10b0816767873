// Length control: finds how many filler units (haystack lines, chapters, words) make a
// prompt fill a token budget, with a handful of tokenizations whatever the length.
#ifndef SF_TASKS_FIT_H_
#define SF_TASKS_FIT_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "common/tokenizer.h"
#include "tasks/task.h"

namespace sf::tasks {

struct FitResult {
  int64_t units = 0;      // the chosen number of filler units
  int64_t tokens = 0;     // tokens of render(units)
  int tokenizations = 0;  // how many texts were counted to find it
};

// `render(n)` is the whole prompt with n filler units, for min_units <= n <= max_units;
// its token count must grow (roughly) with n, and it must be a pure function of n.
// Returns n whose prompt has between budget.MinPromptTokens() and MaxPromptTokens()
// tokens, as close to the maximum as the units' size allows.
//
// How: the fixed parts are counted once, tokens per unit are estimated from a prefix
// whose size is chosen from characters (no tokenization), then a secant search on
// whole-prompt counts converges in 2-4 counts (falling back to bisection), because
// tokens at unit boundaries make sums of parts inexact.
//
// FailedPrecondition when the fixed parts exceed the budget, or all units together
// stay below it, or units are too coarse to land inside the window.
absl::StatusOr<FitResult> FitUnits(const Tokenizer& tokenizer, const PromptBudget& budget,
                                   int64_t min_units, int64_t max_units,
                                   const std::function<std::string(int64_t)>& render);

// FitUnits over `build(n).prompt`, then the sample built with the chosen n, stamped
// with its identity (task, seed, index, length) and token count.
absl::StatusOr<Sample> BuildFitted(const std::string& task, uint64_t seed, int64_t index,
                                   const Tokenizer& tokenizer, const PromptBudget& budget,
                                   int64_t min_units, int64_t max_units,
                                   const std::function<Sample(int64_t)>& build);

}  // namespace sf::tasks

#endif  // SF_TASKS_FIT_H_
