// "Did you mean" suggestions for misspelt names (spec keys, task parameters, commands and
// flags): the Levenshtein distance and the closest plausible candidate.
#ifndef SF_COMMON_DID_YOU_MEAN_H_
#define SF_COMMON_DID_YOU_MEAN_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace sf {

// Levenshtein distance (insertions, deletions, substitutions).
int EditDistance(absl::string_view a, absl::string_view b);

// The candidate closest to `word` when it is close enough to be a plausible typo
// (within max(2, a third of its length) edits), else nullopt.
std::optional<std::string> ClosestName(absl::string_view word,
                                       const std::vector<std::string>& candidates);

}  // namespace sf

#endif  // SF_COMMON_DID_YOU_MEAN_H_
