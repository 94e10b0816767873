// The pair counts of device selections against a brute-force count over every (row, key)
// of the same lists, on random lists at odd sizes; the count of heads of a kind; the
// merge of outputs by head kind. Needs a GPU (label gpu).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/methods/selection_count.h"
#include "kernels/cuda/testing/device_vector.h"

namespace sf::cuda {
namespace {

using testing::Device;

// Sorted distinct values in [0, limit), about `count` of them.
std::vector<int32_t> RandomList(std::mt19937& rng, int32_t limit, int count) {
  std::set<int32_t> values;
  std::uniform_int_distribution<int32_t> pick(0, limit - 1);
  for (int i = 0; i < count; ++i) values.insert(pick(rng));
  return {values.begin(), values.end()};
}

struct Csr {
  std::vector<int32_t> offsets = {0};
  std::vector<int32_t> items;
  void Add(const std::vector<int32_t>& list) {
    items.insert(items.end(), list.begin(), list.end());
    offsets.push_back(static_cast<int32_t>(items.size()));
  }
};

unsigned long long Count(const std::vector<unsigned long long>& host) { return host[0]; }

TEST(SelectionCount, LinePairs_EqualBruteForce) {
  std::mt19937 rng(7);
  for (const auto& [lk, lq, lists, hq] : std::vector<std::tuple<int, int, int, int>>{
           {113, 113, 4, 4}, {1023, 300, 2, 6}, {1, 1, 1, 1}}) {
    const int q_offset = lk - lq;
    Csr columns, diagonals;
    unsigned long long want = 0;
    for (int l = 0; l < lists; ++l) {
      const auto c = RandomList(rng, lk, lk / 5 + 1);
      const auto d = RandomList(rng, lk, lk / 7 + 1);
      columns.Add(c);
      diagonals.Add(d);
      for (int i = 0; i < lq; ++i) {
        const int pos = q_offset + i;
        for (int k = 0; k <= pos; ++k) {
          const bool hit = std::binary_search(c.begin(), c.end(), k) ||
                           std::binary_search(d.begin(), d.end(), pos - k);
          want += hit ? static_cast<unsigned long long>(hq / lists) : 0;
        }
      }
    }
    Device<int32_t> co(columns.offsets), ci(columns.items), dof(diagonals.offsets),
        di(diagonals.items);
    Device<unsigned long long> pairs(std::vector<unsigned long long>{0});
    LineSelection sel;
    sel.heads.count = lists;
    sel.column_offsets = co.get();
    sel.columns = ci.get();
    sel.diagonal_offsets = dof.get();
    sel.diagonals = di.get();
    ASSERT_TRUE(CountLinePairs(sel, {q_offset, lq, hq}, pairs.get(), nullptr).ok());
    EXPECT_EQ(Count(pairs.Download()), want) << "lk " << lk << " lq " << lq;
  }
}

TEST(SelectionCount, BlockPairs_EqualBruteForce) {
  std::mt19937 rng(11);
  for (const auto& [lk, lq, block, heads] : std::vector<std::tuple<int, int, int, int>>{
           {113, 113, 16, 3}, {1023, 255, 64, 2}, {300, 300, 128, 1}}) {
    const int q_offset = lk - lq;
    ASSERT_EQ(q_offset % block, 0) << "a test case must start at a block";
    const int nqb = (lq + block - 1) / block;
    Csr lists;
    unsigned long long want = 0;
    for (int h = 0; h < heads; ++h) {
      for (int b = 0; b < nqb; ++b) {
        const int qb = q_offset / block + b;
        // Any key blocks, some past the diagonal (they count nothing).
        const auto kbs = RandomList(rng, qb + 2, qb / 2 + 2);
        lists.Add(kbs);
        for (int i = b * block; i < std::min(lq, (b + 1) * block); ++i) {
          const int pos = q_offset + i;
          for (int kb : kbs) {
            for (int k = kb * block; k < (kb + 1) * block; ++k) want += k <= pos ? 1 : 0;
          }
        }
      }
    }
    Device<int32_t> off(lists.offsets), items(lists.items);
    Device<unsigned long long> pairs(std::vector<unsigned long long>{0});
    BlockSelection sel;
    sel.heads.count = heads;
    sel.block = block;
    sel.num_query_blocks = nqb;
    sel.offsets = off.get();
    sel.key_blocks = items.get();
    ASSERT_TRUE(CountBlockPairs(sel, {q_offset, lq, heads}, pairs.get(), nullptr).ok());
    EXPECT_EQ(Count(pairs.Download()), want) << "lk " << lk << " block " << block;
  }
}

TEST(SelectionCount, HeadsOfKindAndCopy) {
  const std::vector<int32_t> kinds = {0, 1, 1, 0, 1};
  Device<int32_t> dev_kinds(kinds);
  Device<unsigned long long> count(std::vector<unsigned long long>{0});
  ASSERT_TRUE(
      CountHeadsOfKind(dev_kinds.get(), 5, HeadSelectionKind::kBlocks, count.get(), nullptr).ok());
  EXPECT_EQ(count.Download()[0], 3u);

  AttentionParams p;
  p.num_queries = 7;
  p.num_q_heads = 5;
  p.head_dim = 64;
  p.out_row_stride = 5 * 64 + 8;  // rows apart by more than their heads
  p.out_head_stride = 64;
  const size_t n = static_cast<size_t>(p.num_queries * p.out_row_stride);
  std::vector<uint16_t> src(n), dst(n);
  for (size_t i = 0; i < n; ++i) {
    src[i] = static_cast<uint16_t>(i % 65521);
    dst[i] = 0xFFFF;
  }
  Device<uint16_t> dev_src(src), dev_dst(dst);
  ASSERT_TRUE(
      CopyHeadsOfKind(p, dev_src.get(), dev_dst.get(), dev_kinds.get(), HeadSelectionKind::kBlocks)
          .ok());
  const std::vector<uint16_t> got = dev_dst.Download();
  for (int64_t r = 0; r < p.num_queries; ++r) {
    for (int64_t h = 0; h < 5; ++h) {
      for (int64_t d = 0; d < 64; ++d) {
        const size_t at = static_cast<size_t>(r * p.out_row_stride + h * 64 + d);
        ASSERT_EQ(got[at], kinds[static_cast<size_t>(h)] == 1 ? src[at] : 0xFFFF)
            << "row " << r << " head " << h;
      }
    }
  }
}

}  // namespace
}  // namespace sf::cuda
