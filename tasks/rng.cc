#include "tasks/rng.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"

namespace sf::tasks {
namespace {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

uint64_t StableHash(absl::string_view text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

Rng::Rng(uint64_t seed) {
  uint64_t state = seed;
  for (uint64_t& s : s_) s = SplitMix64(state);
}

Rng Rng::ForStream(uint64_t sample_seed, absl::string_view task, absl::string_view stream) {
  uint64_t state = sample_seed ^ Rotl(StableHash(task), 17) ^ Rotl(StableHash(stream), 41);
  return Rng(SplitMix64(state));
}

uint64_t Rng::Next() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

uint64_t Rng::Below(uint64_t n) {
  // Reject the top partial block so that every residue is equally likely.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = Next();
  } while (x >= limit);
  return x % n;
}

double Rng::Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

std::vector<int64_t> Rng::Distinct(int64_t k, int64_t n) {
  absl::flat_hash_set<int64_t> chosen;
  std::vector<int64_t> out;
  // Floyd's algorithm: k draws, no rejection loop.
  for (int64_t j = n - k; j < n; ++j) {
    const int64_t t = static_cast<int64_t>(Below(static_cast<uint64_t>(j + 1)));
    const int64_t v = chosen.contains(t) ? j : t;
    chosen.insert(v);
    out.push_back(v);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace sf::tasks
