#include "tasks/rng.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf::tasks {
namespace {

TEST(Rng, SameSeed_SameSequence) {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    differs |= x != c.Next();
  }
  EXPECT_TRUE(differs);
}

TEST(Rng, Streams_AreIndependentOfEachOther) {
  Rng a = Rng::ForStream(7, "ruler_niah", "needles");
  Rng b = Rng::ForStream(7, "ruler_niah", "haystack");
  Rng c = Rng::ForStream(7, "ruler_vt", "needles");
  Rng a2 = Rng::ForStream(7, "ruler_niah", "needles");
  const uint64_t x = a.Next();
  EXPECT_NE(x, b.Next());
  EXPECT_NE(x, c.Next());
  EXPECT_EQ(x, a2.Next());
}

TEST(Rng, Below_StaysInRangeAndCoversIt) {
  Rng rng(1);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 7000; ++i) {
    const uint64_t v = rng.Below(7);
    ASSERT_LT(v, 7u);
    ++counts[v];
  }
  for (int c : counts) EXPECT_NEAR(c, 1000, 150);
}

TEST(Rng, Unit_InHalfOpenInterval) {
  Rng rng(3);
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    const double u = rng.Unit();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
}

TEST(Rng, Distinct_GivesSortedDistinctValues) {
  Rng rng(5);
  for (int64_t n : {1, 5, 100}) {
    for (int64_t k : {int64_t{0}, int64_t{1}, n}) {
      std::vector<int64_t> v = rng.Distinct(k, n);
      ASSERT_EQ(static_cast<int64_t>(v.size()), k);
      EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
      EXPECT_EQ(std::set<int64_t>(v.begin(), v.end()).size(), v.size());
      for (int64_t x : v) {
        EXPECT_GE(x, 0);
        EXPECT_LT(x, n);
      }
    }
  }
}

TEST(Rng, Shuffle_IsAPermutation) {
  Rng rng(9);
  std::vector<int> v = {1, 2, 3, 4, 5, 6, 7, 8};
  rng.Shuffle(v);
  EXPECT_THAT(v, ::testing::UnorderedElementsAre(1, 2, 3, 4, 5, 6, 7, 8));
}

}  // namespace
}  // namespace sf::tasks
