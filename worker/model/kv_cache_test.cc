#include "worker/model/kv_cache.h"

#include <algorithm>
#include <random>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf::model {
namespace {

using ::sf::testing::StatusIs;

constexpr int kHeads = 2, kDim = 8, kPage = 4;

// Rows [n][kHeads][kDim] of random values; value of (row, head, d) kept for checks.
std::vector<float> RandomRows(int n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(static_cast<size_t>(n) * kHeads * kDim);
  for (float& x : v) x = u(rng);
  return v;
}

void ExpectPagesMatchKeys(const KvCache& cache, int layer, int head) {
  const int64_t len = cache.length(layer, head);
  ASSERT_EQ(cache.num_pages(layer, head), (len + kPage - 1) / kPage);
  for (int64_t p = 0; p < cache.num_pages(layer, head); ++p) {
    for (int d = 0; d < kDim; ++d) {
      float mn = 1e30f, mx = -1e30f;
      for (int64_t r = p * kPage; r < std::min<int64_t>(len, (p + 1) * kPage); ++r) {
        mn = std::min(mn, cache.keys(layer, head)[r * kDim + d]);
        mx = std::max(mx, cache.keys(layer, head)[r * kDim + d]);
      }
      EXPECT_EQ(cache.page_key_min(layer, head)[p * kDim + d], mn);
      EXPECT_EQ(cache.page_key_max(layer, head)[p * kDim + d], mx);
    }
  }
}

TEST(KvCache, Append_StoresRowsPerHeadWithPositionsAndPages) {
  KvCache cache(/*num_layers=*/2, kHeads, kDim, kPage);
  std::mt19937 rng(1);
  const std::vector<float> k1 = RandomRows(7, rng), v1 = RandomRows(7, rng);
  const std::vector<float> k2 = RandomRows(1, rng), v2 = RandomRows(1, rng);
  cache.Append(1, 7, k1.data(), v1.data(), kHeads * kDim, 0);
  cache.Append(1, 1, k2.data(), v2.data(), kHeads * kDim, 7);
  for (int h = 0; h < kHeads; ++h) {
    EXPECT_EQ(cache.length(1, h), 8);
    EXPECT_EQ(cache.length(0, h), 0);
    EXPECT_EQ(cache.keys(1, h)[3 * kDim + 5], k1[(3 * kHeads + h) * kDim + 5]);
    EXPECT_EQ(cache.values(1, h)[7 * kDim + 2], v2[h * kDim + 2]);
    EXPECT_EQ(cache.positions(1, h)[7], 7);
    ExpectPagesMatchKeys(cache, 1, h);
  }
  EXPECT_EQ(cache.BytesUsed(), 8 * kHeads * 2 * kDim * 4);
}

TEST(KvCache, Compact_KeepsChosenRowsPerHeadAndRebuildsPages) {
  KvCache cache(1, kHeads, kDim, kPage);
  std::mt19937 rng(2);
  const std::vector<float> k = RandomRows(10, rng), v = RandomRows(10, rng);
  cache.Append(0, 10, k.data(), v.data(), kHeads * kDim, 100);
  const std::vector<int64_t> keep = {0, 3, 4, 8, 9};
  SF_ASSERT_OK(cache.Compact(0, 1, keep));
  EXPECT_EQ(cache.length(0, 0), 10);
  EXPECT_EQ(cache.length(0, 1), 5);
  for (size_t i = 0; i < keep.size(); ++i) {
    EXPECT_EQ(cache.positions(0, 1)[i], 100 + keep[i]);
    EXPECT_EQ(cache.keys(0, 1)[i * kDim], k[(keep[i] * kHeads + 1) * kDim]);
    EXPECT_EQ(cache.values(0, 1)[i * kDim + 7], v[(keep[i] * kHeads + 1) * kDim + 7]);
  }
  ExpectPagesMatchKeys(cache, 0, 1);
  // Appending after compaction continues the compacted head.
  cache.Append(0, 1, k.data(), v.data(), kHeads * kDim, 110);
  EXPECT_EQ(cache.length(0, 1), 6);
  EXPECT_EQ(cache.positions(0, 1)[5], 110);
  ExpectPagesMatchKeys(cache, 0, 1);
}

TEST(KvCache, Compact_RejectsUnorderedOrOutOfRangeSlots) {
  KvCache cache(1, kHeads, kDim, kPage);
  std::mt19937 rng(3);
  const std::vector<float> k = RandomRows(4, rng);
  cache.Append(0, 4, k.data(), k.data(), kHeads * kDim, 0);
  EXPECT_THAT(cache.Compact(0, 0, std::vector<int64_t>{2, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("increasing")));
  EXPECT_THAT(cache.Compact(0, 0, std::vector<int64_t>{4}),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  EXPECT_THAT(cache.Compact(3, 0, std::vector<int64_t>{0}),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  EXPECT_EQ(cache.length(0, 0), 4);
}

}  // namespace
}  // namespace sf::model
