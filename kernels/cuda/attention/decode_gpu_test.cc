// Dense and sparse (pages, gathered rows) split-KV decode against the float64 CPU
// executor (kernels::AttendSelected) on the same bf16 inputs. Tolerance: twice the error
// of a naive same-precision decode plus 1e-5; outputs are poisoned first and every
// element must be written; rows past each head's length hold NaN and must not be read.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/attention/decode.h"
#include "kernels/cuda/attention/decode_test_util.h"

namespace sf::cuda {
namespace {

using testing::AllocateWorkspace;
using testing::DecodeCase;
using testing::DeviceArray;
using testing::DeviceCase;
using testing::ExpectMatches;
using testing::FromBf16;
using testing::HeadRows;
using testing::MakeCase;
using testing::Upload;

// Runs `body` under each split-KV main loop (decode_split_kv.cuh): the shared-memory
// pipeline and the register double buffer (the default).
template <typename F>
void ForEachPipeline(F&& body) {
  for (const char* pipeline : {"smem", "registers"}) {
    setenv("SF_DECODE_PIPELINE", pipeline, 1);
    SCOPED_TRACE(pipeline);
    body();
  }
  unsetenv("SF_DECODE_PIPELINE");
}

void RunDenseOnce(const DecodeCase& c, const std::string& what) {
  DeviceCase d;
  ASSERT_NO_FATAL_FAILURE(Upload(c, &d));
  absl::StatusOr<DecodePlan> plan = PlanDenseDecode(d.p);
  ASSERT_TRUE(plan.ok()) << plan.status();
  AllocateWorkspace(*plan, &d);
  const absl::Status s = DenseDecode(d.p);
  ASSERT_TRUE(s.ok()) << what << ": " << s;
  ExpectMatches(c, d, testing::DenseRowsOf(c),
                what + " (splits " + std::to_string(plan->num_splits) + ")");
}
// Both main loops on caches up to 50K rows; the default (shared-memory) one above.
void RunDense(const DecodeCase& c, const std::string& what) {
  int64_t rows = 0;
  for (int32_t l : c.lengths) rows += l;
  if (rows <= 50000) {
    ForEachPipeline([&] { RunDenseOnce(c, what); });
  } else {
    RunDenseOnce(c, what);
  }
}

TEST(DenseDecode, OddLengthsEveryGqaRatio_MatchFloat64Reference) {
  uint32_t seed = 1;
  for (int group : {1, 4, 7, 8}) {
    for (int32_t len : {1, 17, 113, 4097, 100003}) {
      const DecodeCase c = MakeCase(1, 2, group, 128, {len, len}, seed++, group == 7 ? 3.0f : 1.0f);
      RunDense(c, "D 128 group " + std::to_string(group) + " length " + std::to_string(len));
    }
  }
}

TEST(DenseDecode, HeadDims64And256_MatchFloat64Reference) {
  uint32_t seed = 100;
  for (int dim : {64, 256}) {
    for (int group : {1, 7, 8}) {
      for (int32_t len : {17, 4097, 33333}) {
        const DecodeCase c = MakeCase(1, 2, group, dim, {len, len + 5}, seed++, 2.0f);
        RunDense(c, "D " + std::to_string(dim) + " group " + std::to_string(group) + " length " +
                        std::to_string(len));
      }
    }
  }
}

TEST(DenseDecode, UnevenPerHeadLengthsAndEmptyHead_MatchFloat64Reference) {
  const DecodeCase c = MakeCase(1, 4, 7, 128, {1, 100003, 0, 4097}, 7, 2.0f);
  RunDense(c, "uneven 28/4");
  const DecodeCase c64 = MakeCase(1, 8, 8, 64, {17, 113, 1, 65536, 3, 4096, 4095, 99}, 8);
  RunDense(c64, "uneven 64/8 D 64");
}

TEST(DenseDecode, SixteenQueryHeadsPerKvHead_TwoHeadBlocks) {
  const DecodeCase c = MakeCase(1, 1, 16, 128, {5000}, 9);
  RunDense(c, "group 16");
}

TEST(DenseDecode, BatchOfSequencesWithUnevenLengths_MatchFloat64Reference) {
  std::mt19937 rng(11);
  std::vector<int32_t> lengths(3 * 2);
  for (int32_t& l : lengths) l = 1 + static_cast<int32_t>(rng() % 20000);
  const DecodeCase c = MakeCase(3, 2, 4, 128, lengths, 12);
  RunDense(c, "batch 3");
  // Batch 16 at the benchmark's shape, shorter.
  std::vector<int32_t> l16(16 * 4);
  for (int32_t& l : l16) l = 1 + static_cast<int32_t>(rng() % 3000);
  RunDense(MakeCase(16, 4, 7, 128, l16, 13), "batch 16, 28/4");
}

TEST(DenseDecode, PerSequencePointerArrays_MatchStrides) {
  const DecodeCase c = MakeCase(2, 2, 4, 128, {300, 4000, 17, 2500}, 14);
  DeviceCase d;
  ASSERT_NO_FATAL_FAILURE(Upload(c, &d));
  // Separate allocations per sequence, reached through k_seqs / v_seqs.
  const size_t per_seq = static_cast<size_t>(c.hkv) * c.capacity * c.dim;
  std::vector<DeviceArray<uint16_t>> ks, vs;
  std::vector<const void*> kp, vp;
  for (int b = 0; b < c.batch; ++b) {
    ks.emplace_back(per_seq);
    vs.emplace_back(per_seq);
    ASSERT_EQ(
        cudaMemcpy(ks.back().get(), c.k.data() + b * per_seq, per_seq * 2, cudaMemcpyHostToDevice),
        cudaSuccess);
    ASSERT_EQ(
        cudaMemcpy(vs.back().get(), c.v.data() + b * per_seq, per_seq * 2, cudaMemcpyHostToDevice),
        cudaSuccess);
    kp.push_back(ks.back().get());
    vp.push_back(vs.back().get());
  }
  DeviceArray<const void*> kptr(kp.size()), vptr(vp.size());
  ASSERT_EQ(kptr.Upload(kp), cudaSuccess);
  ASSERT_EQ(vptr.Upload(vp), cudaSuccess);
  // The strided k/v point at poison: only the pointer arrays hold the data.
  ASSERT_EQ(cudaMemset(d.k.get(), 0xff, c.k.size() * 2), cudaSuccess);
  ASSERT_EQ(cudaMemset(d.v.get(), 0xff, c.v.size() * 2), cudaSuccess);
  d.p.k_seqs = kptr.get();
  d.p.v_seqs = vptr.get();
  d.p.kv_batch_stride = 0;
  absl::StatusOr<DecodePlan> plan = PlanDenseDecode(d.p);
  ASSERT_TRUE(plan.ok()) << plan.status();
  AllocateWorkspace(*plan, &d);
  ASSERT_TRUE(DenseDecode(d.p).ok());
  ExpectMatches(c, d, testing::DenseRowsOf(c), "pointer arrays");
}

TEST(DenseDecode, BadParams_InvalidArgumentNamingField) {
  const DecodeCase c = MakeCase(1, 2, 4, 128, {100, 100}, 15);
  DeviceCase d;
  ASSERT_NO_FATAL_FAILURE(Upload(c, &d));
  AttentionParams p = d.p;
  p.head_dim = 80;
  EXPECT_NE(std::string(DenseDecode(p).message()).find("head_dim"), std::string::npos);
  p = d.p;
  p.num_queries = 2;
  EXPECT_NE(std::string(DenseDecode(p).message()).find("num_queries"), std::string::npos);
  p = d.p;
  p.num_q_heads = 7;
  EXPECT_NE(std::string(DenseDecode(p).message()).find("num_q_heads"), std::string::npos);
  p = d.p;
  p.kv_row_stride = 130;
  EXPECT_EQ(DenseDecode(p).code(), absl::StatusCode::kInvalidArgument);
  p = d.p;
  p.max_kv_length = 100000;  // needs splits, so a workspace
  EXPECT_NE(std::string(DenseDecode(p).message()).find("workspace"), std::string::npos);
}

// Random sorted lists of pages (or rows) per list head; with `shared` one list per KV
// head, else one per query head.
std::vector<std::vector<int32_t>> RandomSortedSubsets(int lists, int64_t universe, int64_t count,
                                                      std::mt19937* rng) {
  std::vector<std::vector<int32_t>> out(lists);
  std::vector<int32_t> all(universe);
  std::iota(all.begin(), all.end(), 0);
  for (auto& l : out) {
    std::shuffle(all.begin(), all.end(), *rng);
    l.assign(all.begin(), all.begin() + std::min<int64_t>(count, universe));
    std::sort(l.begin(), l.end());
  }
  return out;
}

struct DeviceLists {
  DeviceArray<int32_t> offsets, items;
};

void UploadLists(const std::vector<std::vector<int32_t>>& lists, DeviceLists* d) {
  std::vector<int32_t> offsets{0}, items;
  for (const auto& l : lists) {
    items.insert(items.end(), l.begin(), l.end());
    offsets.push_back(static_cast<int32_t>(items.size()));
  }
  if (items.empty()) items.push_back(0);
  d->offsets = DeviceArray<int32_t>(offsets.size());
  d->items = DeviceArray<int32_t>(items.size());
  ASSERT_EQ(d->offsets.Upload(offsets), cudaSuccess);
  ASSERT_EQ(d->items.Upload(items), cudaSuccess);
}

// Random sorted page lists (per KV head when shared, else per query head), paged decode.
void RunRandomPages(const DecodeCase& c, int page, bool shared, int max_pages, std::mt19937* rng) {
  const int lists_per_seq = shared ? c.hkv : c.hq();
  std::vector<std::vector<int32_t>> lists;
  std::vector<HeadRows> rows(c.batch, HeadRows(c.hq()));
  for (int b = 0; b < c.batch; ++b) {
    std::vector<std::vector<int32_t>> seq_lists(lists_per_seq);
    for (int li = 0; li < lists_per_seq; ++li) {
      const int g = shared ? li : li / c.group;
      const int64_t len = c.lengths[b * c.hkv + g];
      const int64_t pages = (len + page - 1) / page;
      seq_lists[li] = RandomSortedSubsets(1, pages, 1 + (*rng)() % max_pages, rng)[0];
    }
    for (int h = 0; h < c.hq(); ++h) {
      const int g = h / c.group;
      const int64_t len = c.lengths[b * c.hkv + g];
      for (int32_t pg : seq_lists[shared ? g : h]) {
        for (int64_t r = int64_t{pg} * page; r < std::min<int64_t>((int64_t{pg} + 1) * page, len);
             ++r) {
          rows[b][h].push_back(r);
        }
      }
    }
    lists.insert(lists.end(), seq_lists.begin(), seq_lists.end());
  }
  int64_t max_selected = 0;
  for (const auto& l : lists) max_selected = std::max<int64_t>(max_selected, l.size() * page);
  DeviceCase d;
  ASSERT_NO_FATAL_FAILURE(Upload(c, &d));
  DeviceLists dl;
  ASSERT_NO_FATAL_FAILURE(UploadLists(lists, &dl));
  PageSelection sel;
  sel.heads.count = lists_per_seq;
  sel.page = page;
  sel.offsets = dl.offsets.get();
  sel.pages = dl.items.get();
  absl::StatusOr<DecodePlan> plan = PlanSparseDecode(d.p, sel.heads, max_selected);
  ASSERT_TRUE(plan.ok()) << plan.status();
  AllocateWorkspace(*plan, &d);
  const absl::Status s = PagedDecode(d.p, sel, max_selected);
  ASSERT_TRUE(s.ok()) << s;
  ExpectMatches(c, d, rows,
                std::string(shared ? "shared" : "per-head") + " pages of " + std::to_string(page));
}

// Random sorted row lists per query head, gathered decode.
void RunRandomRows(const DecodeCase& c, int max_rows, std::mt19937* rng) {
  std::vector<std::vector<int32_t>> lists;
  std::vector<HeadRows> rows(c.batch, HeadRows(c.hq()));
  int64_t max_selected = 0;
  for (int b = 0; b < c.batch; ++b) {
    for (int h = 0; h < c.hq(); ++h) {
      const int64_t len = c.lengths[b * c.hkv + h / c.group];
      lists.push_back(RandomSortedSubsets(1, len, 1 + (*rng)() % max_rows, rng)[0]);
      rows[b][h].assign(lists.back().begin(), lists.back().end());
      max_selected = std::max<int64_t>(max_selected, lists.back().size());
    }
  }
  DeviceCase d;
  ASSERT_NO_FATAL_FAILURE(Upload(c, &d));
  DeviceLists dl;
  ASSERT_NO_FATAL_FAILURE(UploadLists(lists, &dl));
  RowSelection sel;
  sel.heads.count = c.hq();
  sel.offsets = dl.offsets.get();
  sel.rows = dl.items.get();
  absl::StatusOr<DecodePlan> plan = PlanSparseDecode(d.p, sel.heads, max_selected);
  ASSERT_TRUE(plan.ok()) << plan.status();
  AllocateWorkspace(*plan, &d);
  ASSERT_TRUE(GatheredDecode(d.p, sel, max_selected).ok());
  ExpectMatches(c, d, rows, "gathered rows per query head");
}

TEST(PagedDecode, RandomPagesSharedAndPerHead_MatchFloat64Reference) {
  std::mt19937 rng(21);
  for (bool shared : {true, false}) {
    for (int page : {16, 7}) {
      const DecodeCase c = MakeCase(2, 2, 4, 128, {4097, 1000, 333, 100003}, 22 + page, 2.0f);
      RunRandomPages(c, page, shared, 300, &rng);
    }
  }
}

TEST(GatheredDecode, RandomRowsPerQueryHead_MatchFloat64Reference) {
  std::mt19937 rng(31);
  const DecodeCase c1 = MakeCase(1, 4, 7, 128, {5000, 113, 100003, 4097}, 32, 3.0f);
  const DecodeCase c2 = MakeCase(2, 2, 4, 64, {300, 17, 1, 2000}, 33, 3.0f);
  ForEachPipeline([&] {
    RunRandomRows(c1, 2000, &rng);
    RunRandomRows(c2, 500, &rng);
  });
}

// Small sizes over every path, for compute-sanitizer memcheck and racecheck runs
// (--gtest_filter=*ForSanitizers*).
TEST(DecodeSmall, EveryPath_ForSanitizers) {
  RunDense(MakeCase(2, 2, 4, 128, {1, 17, 113, 300}, 80), "small dense D 128");
  RunDense(MakeCase(1, 2, 7, 64, {113, 50}, 81), "small dense D 64");
  RunDense(MakeCase(1, 1, 8, 256, {300}, 82), "small dense D 256");
  RunDense(MakeCase(1, 1, 16, 128, {200}, 83), "small dense group 16");
  std::mt19937 rng(84);
  ForEachPipeline([&] {
    RunRandomPages(MakeCase(2, 2, 4, 128, {300, 17, 113, 1}, 85), 16, true, 10, &rng);
    RunRandomPages(MakeCase(1, 2, 4, 128, {300, 250}, 86), 7, false, 10, &rng);
    RunRandomRows(MakeCase(1, 2, 4, 128, {300, 17}, 87), 100, &rng);
  });
}

}  // namespace
}  // namespace sf::cuda
