// The tasks' own pseudo-random generator: xoshiro256** seeded through splitmix64, with
// integer-only helpers, so that a sample's bytes are the same with every compiler and
// standard library (std::uniform_*_distribution output differs between them).
#ifndef SF_TASKS_RNG_H_
#define SF_TASKS_RNG_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace sf::tasks {

// 64-bit FNV-1a of `text`: a stable hash for naming random streams.
uint64_t StableHash(absl::string_view text);

class Rng {
 public:
  explicit Rng(uint64_t seed);
  // A generator for one purpose ("stream") of one sample: independent streams let a
  // task draw, e.g., needle positions without disturbing the filler text.
  static Rng ForStream(uint64_t sample_seed, absl::string_view task, absl::string_view stream);

  uint64_t Next();
  // Uniform integer in [0, n). REQUIRES: n > 0. Unbiased (rejection sampling).
  uint64_t Below(uint64_t n);
  // Uniform in [0, 1) with 53 random bits.
  double Unit();
  // True with probability `p`.
  bool Chance(double p) { return Unit() < p; }

  template <typename T>
  void Shuffle(std::vector<T>& items) {
    for (size_t i = items.size(); i > 1; --i) {
      std::swap(items[i - 1], items[Below(i)]);
    }
  }
  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[Below(items.size())];
  }
  // `k` distinct values of [0, n) in increasing order. REQUIRES: k <= n.
  std::vector<int64_t> Distinct(int64_t k, int64_t n);

 private:
  uint64_t s_[4];
};

}  // namespace sf::tasks

#endif  // SF_TASKS_RNG_H_
