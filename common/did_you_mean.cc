#include "common/did_you_mean.h"

#include <algorithm>
#include <limits>

namespace sf {

int EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<int> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int diagonal = row[0];
    row[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::optional<std::string> ClosestName(absl::string_view word,
                                       const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  int best_distance = std::numeric_limits<int>::max();
  for (const std::string& c : candidates) {
    const int d = EditDistance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  if (!best.has_value()) return std::nullopt;
  const int threshold = std::max<int>(2, static_cast<int>(best->size()) / 3);
  if (best_distance > threshold) return std::nullopt;
  return best;
}

}  // namespace sf
