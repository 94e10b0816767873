// The Hopper prefill kernels against the CPU executor (kernels::AttendSelected, double) on
// the same bf16-rounded inputs: dense causal and block-sparse, odd lengths, GQA ratios 1,
// 4, 7, 8, head dims 64/128/256, chunked prefill over an existing cache, rows that see no
// key. The tolerance is set by a naive bf16 implementation of the same selection.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/methods/testing/typed_params.h"
#include "kernels/cuda/attention/prefill.h"
#include "kernels/cuda/testing/device_vector.h"

namespace sf::cuda {
namespace {

using kernels::AttentionInput;
using kernels::KeyRange;
using kernels::TensorView;

using testing::Device;

const std::pair<PrefillSchedule, const char*> kSchedules[] = {
    {PrefillSchedule::kOverlapped, "overlapped"}, {PrefillSchedule::kSerial, "serial"}};

float RoundBf16(float x) { return __bfloat162float(__float2bfloat16(x)); }

struct Shape {
  int64_t num_queries;
  int64_t kv_length;
  int hq;
  int hkv;
  int head_dim;
};

std::string Name(const Shape& s) {
  return absl::StrCat("nq", s.num_queries, "_kv", s.kv_length, "_hq", s.hq, "_hkv", s.hkv, "_d",
                      s.head_dim);
}

// Inputs in the engine's layouts: Q [num_queries][hq (+ room for K/V of a fused
// projection)][d], K/V [hkv][capacity][d]; host copies hold the bf16-rounded values.
struct Problem {
  Shape shape;
  int64_t capacity;
  int64_t q_row_stride;
  std::vector<float> q, k, v;
  std::vector<__nv_bfloat16> q16, k16, v16;

  Problem(const Shape& s, int64_t cap, std::mt19937& rng)
      : shape(s), capacity(cap), q_row_stride((s.hq + 2 * s.hkv) * s.head_dim) {
    std::normal_distribution<float> dist(0.f, 1.f);
    auto fill = [&](std::vector<float>* h, std::vector<__nv_bfloat16>* d, size_t n, float scale) {
      h->resize(n);
      d->resize(n);
      for (size_t i = 0; i < n; ++i) {
        (*d)[i] = __float2bfloat16(scale * dist(rng));
        (*h)[i] = __bfloat162float((*d)[i]);
      }
    };
    // Scores of order a few units, as in trained models, so the softmax is not flat.
    fill(&q, &q16, s.num_queries * q_row_stride, 1.5f);
    fill(&k, &k16, s.hkv * capacity * s.head_dim, 1.0f);
    fill(&v, &v16, s.hkv * capacity * s.head_dim, 1.0f);
  }

  AttentionInput Input() const {
    const Shape& s = shape;
    AttentionInput in;
    in.q = TensorView{q.data(), s.hq, s.num_queries, s.head_dim, s.head_dim, q_row_stride};
    in.k = TensorView{k.data(), s.hkv, s.kv_length, s.head_dim, capacity * s.head_dim, s.head_dim};
    in.v = TensorView{v.data(), s.hkv, s.kv_length, s.head_dim, capacity * s.head_dim, s.head_dim};
    in.q_offset = s.kv_length - s.num_queries;
    return in;
  }
};

// Rows of every head chosen by a CPU Selection, for the naive implementation.
double NaiveRelativeError(const AttentionInput& in, const kernels::Selection& sel,
                          const kernels::Tensor& ref, float scale, int64_t row_step) {
  double err = 0, norm = 0;
  std::vector<KeyRange> ranges;
  const int64_t d = in.q.dim;
  std::vector<float> p;
  std::vector<float> o(d);
  for (int64_t h = 0; h < in.q.heads; ++h) {
    const int64_t g = h / in.group();
    for (int64_t i = 0; i < in.q.len; i += row_step) {
      sel.Row(h, i, &ranges);
      const float* qr = in.q.Row(h, i);
      p.clear();
      std::vector<int64_t> keys;
      for (const KeyRange& r : ranges)
        for (int64_t k = r.begin; k < r.end; ++k) keys.push_back(k);
      float mx = -INFINITY;
      for (int64_t k : keys) {
        const float* kr = in.k.Row(g, k);
        float s = 0;
        for (int64_t c = 0; c < d; ++c) s += qr[c] * kr[c];
        p.push_back(s * scale);
        mx = std::max(mx, p.back());
      }
      float sum = 0;
      std::fill(o.begin(), o.end(), 0.f);
      for (size_t j = 0; j < keys.size(); ++j) {
        const float e = std::exp(p[j] - mx);
        sum += e;
        const float e16 = RoundBf16(e);
        const float* vr = in.v.Row(g, keys[j]);
        for (int64_t c = 0; c < d; ++c) o[c] += e16 * vr[c];
      }
      const float* rr = ref.Row(h, i);
      for (int64_t c = 0; c < d; ++c) {
        const float out = keys.empty() ? 0.f : RoundBf16(o[c] / sum);
        err += (out - rr[c]) * (out - rr[c]);
        norm += static_cast<double>(rr[c]) * rr[c];
      }
    }
  }
  return norm > 0 ? std::sqrt(err / norm) : std::sqrt(err);
}

struct KernelResult {
  std::vector<float> out;  // [nq][hq][d] as float
  std::vector<float> lse;  // [hq][nq]
};

// Runs `launch` on a fresh output poisoned with NaN; every element must be written.
template <typename Launch>
KernelResult RunKernel(const Problem& pb, bool per_head_lengths, Launch launch) {
  const Shape& s = pb.shape;
  Device<__nv_bfloat16> q(pb.q16), k(pb.k16), v(pb.v16);
  const size_t out_n = s.num_queries * s.hq * s.head_dim;
  const std::vector<__nv_bfloat16> poison(out_n, __float2bfloat16(std::nanf("")));
  Device<__nv_bfloat16> out(poison);
  Device<float> lse(std::vector<float>(s.hq * s.num_queries, std::nanf("")));
  Device<int32_t> lengths(std::vector<int32_t>(s.hkv, static_cast<int32_t>(s.kv_length)));

  AttentionParams p;
  p.q = q.get();
  p.q_row_stride = pb.q_row_stride;
  p.q_head_stride = s.head_dim;
  p.k = k.get();
  p.v = v.get();
  p.kv_head_stride = pb.capacity * s.head_dim;
  p.kv_row_stride = s.head_dim;
  p.kv_lengths = per_head_lengths ? lengths.get() : nullptr;
  p.max_kv_length = per_head_lengths ? pb.capacity : s.kv_length;
  p.num_queries = s.num_queries;
  p.num_q_heads = s.hq;
  p.num_kv_heads = s.hkv;
  p.head_dim = s.head_dim;
  p.softmax_scale = 1.f / std::sqrt(static_cast<float>(s.head_dim));
  p.out = out.get();
  p.out_row_stride = s.hq * s.head_dim;
  p.out_head_stride = s.head_dim;
  p.lse = lse.get();
  SF_EXPECT_OK(launch(p));
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  KernelResult r;
  for (const auto& x : out.Download()) r.out.push_back(__bfloat162float(x));
  r.lse = lse.Download();
  return r;
}

// Compares with the double reference; the error budget is twice the naive bf16 error
// plus 1e-4. Also checks that every output and lse element was written.
void ExpectMatches(const Problem& pb, const KernelResult& got, const kernels::AttentionResult& ref,
                   const kernels::Selection& sel, const char* label) {
  const Shape& s = pb.shape;
  const float scale = 1.f / std::sqrt(static_cast<float>(s.head_dim));
  double err = 0, norm = 0;
  int64_t unwritten = 0;
  for (int64_t i = 0; i < s.num_queries; ++i) {
    for (int h = 0; h < s.hq; ++h) {
      const float* rr = ref.output.Row(h, i);
      for (int c = 0; c < s.head_dim; ++c) {
        const float x = got.out[(i * s.hq + h) * s.head_dim + c];
        if (!std::isfinite(x)) {
          ++unwritten;
          continue;
        }
        err += (x - rr[c]) * static_cast<double>(x - rr[c]);
        norm += static_cast<double>(rr[c]) * rr[c];
      }
    }
  }
  ASSERT_EQ(unwritten, 0) << "output elements not written (still NaN) in " << Name(s) << " "
                          << label;
  const double rel = norm > 0 ? std::sqrt(err / norm) : std::sqrt(err);
  const int64_t step = std::max<int64_t>(1, s.num_queries / 256);
  const double naive = NaiveRelativeError(pb.Input(), sel, ref.output, scale, step);
  EXPECT_LE(rel, 2 * naive + 1e-4)
      << Name(s) << " " << label << ": kernel " << rel << " vs naive bf16 " << naive;
  std::printf("%-30s %-10s rel err %.2e (naive bf16 %.2e)\n", Name(s).c_str(), label, rel, naive);
  int64_t lse_bad = 0;
  for (int h = 0; h < s.hq; ++h) {
    for (int64_t i = 0; i < s.num_queries; ++i) {
      const double want = ref.row_lse[h * s.num_queries + i];
      const float have = got.lse[h * s.num_queries + i];
      const bool ok = std::isinf(want) ? (std::isinf(have) && have < 0)
                                       : std::abs(have - want) <= 2e-3 * (1 + std::abs(want));
      if (!ok && ++lse_bad <= 3) {
        ADD_FAILURE() << Name(s) << " " << label << " lse head " << h << " row " << i << ": "
                      << have << " want " << want;
      }
    }
  }
  EXPECT_EQ(lse_bad, 0);
}

class DensePrefillTest : public ::testing::TestWithParam<Shape> {};

TEST_P(DensePrefillTest, MatchesDoubleReference) {
  const Shape s = GetParam();
  std::mt19937 rng(
      static_cast<uint32_t>(s.num_queries * 131 + s.kv_length * 7 + s.hq + s.head_dim));
  const Problem pb(s, s.kv_length, rng);
  SF_ASSERT_OK_AND_ASSIGN(auto sel,
                          kernels::testing::PrefillSelectTyped("dense", ParamMap{}, pb.Input()));
  const kernels::AttentionResult ref = kernels::AttendSelected(pb.Input(), sel.selection);
  for (const auto& [schedule, label] : kSchedules) {
    const KernelResult got = RunKernel(
        pb, false, [schedule](const AttentionParams& p) { return PrefillDense(p, schedule); });
    ExpectMatches(pb, got, ref, *sel.selection, label);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, DensePrefillTest,
    ::testing::Values(Shape{1, 1, 4, 1, 128}, Shape{17, 17, 4, 4, 64}, Shape{113, 113, 7, 1, 128},
                      Shape{1023, 1023, 8, 1, 128}, Shape{4097, 4097, 8, 2, 128},
                      Shape{1023, 1023, 8, 2, 64}, Shape{4097, 4097, 4, 1, 64},
                      Shape{113, 113, 4, 4, 256}, Shape{1023, 1023, 7, 1, 256},
                      // Chunked prefill: queries after an existing cache.
                      Shape{17, 300, 8, 1, 64}, Shape{1, 1023, 4, 1, 128},
                      Shape{1000, 2049, 4, 1, 128}, Shape{113, 1023, 8, 8, 256},
                      // Many query tiles per persistent CTA.
                      Shape{2049, 2049, 32, 4, 64}),
    [](const ::testing::TestParamInfo<Shape>& shape) { return Name(shape.param); });

TEST(DensePrefill, PerHeadLengthsInALargerCache_MatchesReference) {
  const Shape s{300, 777, 8, 2, 128};
  std::mt19937 rng(5);
  const Problem pb(s, 1024, rng);
  SF_ASSERT_OK_AND_ASSIGN(auto sel,
                          kernels::testing::PrefillSelectTyped("dense", ParamMap{}, pb.Input()));
  const kernels::AttentionResult ref = kernels::AttendSelected(pb.Input(), sel.selection);
  for (const auto& [schedule, label] : kSchedules) {
    const KernelResult got = RunKernel(
        pb, true, [schedule](const AttentionParams& p) { return PrefillDense(p, schedule); });
    ExpectMatches(pb, got, ref, *sel.selection, label);
  }
}

TEST(DensePrefill, BadParams_InvalidArgumentNamingField) {
  AttentionParams p;
  p.head_dim = 96;
  EXPECT_EQ(PrefillDense(p).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(PrefillDense(p).message().find("head_dim"), std::string::npos);
  p.head_dim = 128;
  p.num_q_heads = 6;
  p.num_kv_heads = 4;
  EXPECT_NE(PrefillDense(p).message().find("num_q_heads"), std::string::npos);
  p.num_kv_heads = 2;
  p.num_queries = 10;
  p.max_kv_length = 5;
  EXPECT_NE(PrefillDense(p).message().find("num_queries"), std::string::npos);
}

// A block selection given as lists (per query head or per KV head), with the CPU view of
// the same keys: query row i (position q_offset + i) sees the listed blocks up to itself.
class BlockListSelection : public kernels::Selection {
 public:
  BlockListSelection(std::vector<std::vector<std::vector<int32_t>>> lists, int block, int group,
                     int64_t q_offset)
      : lists_(std::move(lists)), block_(block), group_(group), q_offset_(q_offset) {}
  void Row(int64_t h, int64_t i, std::vector<KeyRange>* out) const override {
    out->clear();
    const auto& list = lists_[lists_.size() == 1 ? 0 : ListHead(h)][i / block_];
    const int64_t pos = q_offset_ + i;
    for (int32_t c : list) {
      const int64_t begin = int64_t{c} * block_, end = std::min<int64_t>(begin + block_, pos + 1);
      if (begin >= end) continue;
      if (!out->empty() && out->back().end == begin) {
        out->back().end = end;
      } else {
        out->push_back({begin, end});
      }
    }
  }
  int64_t ListHead(int64_t h) const { return h / group_; }
  // CSR for the device.
  void Flatten(std::vector<int32_t>* offsets, std::vector<int32_t>* blocks) const {
    offsets->assign(1, 0);
    blocks->clear();
    for (const auto& head : lists_) {
      for (const auto& list : head) {
        blocks->insert(blocks->end(), list.begin(), list.end());
        offsets->push_back(static_cast<int32_t>(blocks->size()));
      }
    }
  }
  int heads() const { return static_cast<int>(lists_.size()); }

 private:
  std::vector<std::vector<std::vector<int32_t>>> lists_;
  int block_;
  int group_;  // query heads per list
  int64_t q_offset_;
};

void RunBlockCase(const Problem& pb, const BlockListSelection& sel_lists,
                  std::shared_ptr<const kernels::Selection> cpu_sel, int block) {
  const Shape& s = pb.shape;
  std::vector<int32_t> offsets, blocks;
  sel_lists.Flatten(&offsets, &blocks);
  Device<int32_t> d_offsets(offsets), d_blocks(blocks);
  BlockSelection sel;
  sel.heads.count = sel_lists.heads();
  sel.block = block;
  sel.num_query_blocks = static_cast<int32_t>((s.num_queries + block - 1) / block);
  sel.offsets = d_offsets.get();
  sel.key_blocks = d_blocks.get();
  const kernels::AttentionResult ref = kernels::AttendSelected(pb.Input(), cpu_sel);
  for (const auto& [schedule, label] : kSchedules) {
    const KernelResult got = RunKernel(
        pb, false, [&](const AttentionParams& p) { return PrefillBlockSparse(p, sel, schedule); });
    ExpectMatches(pb, got, ref, *cpu_sel, label);
  }
}

struct BlockCase {
  Shape shape;
  int block;
  int budget;
};

class BlockSparsePrefillTest : public ::testing::TestWithParam<BlockCase> {};

// The CPU's block_sparse choice (per query head), converted to device lists: blocks of
// 128 and 256 (whole kernel tiles) and of 16, 32, 64 (tiles with sub-block masks).
TEST_P(BlockSparsePrefillTest, CpuBlockSparseSelection_MatchesReference) {
  const Shape s = GetParam().shape;
  const int block = GetParam().block;
  std::mt19937 rng(static_cast<uint32_t>(s.num_queries + s.head_dim * 3 + s.hq + block));
  const Problem pb(s, s.kv_length, rng);
  kernels::BlockSparseParams bp;
  bp.block = block;
  bp.block_budget = GetParam().budget;
  SF_ASSERT_OK_AND_ASSIGN(auto chosen,
                          kernels::testing::PrefillSelectTyped("block_sparse", bp, pb.Input()));
  const kernels::SelectionStructure st = kernels::DescribeSelection(*chosen.selection);
  ASSERT_EQ(st.block, block);
  ASSERT_EQ(static_cast<int>(st.blocks.size()), s.hq);
  std::vector<std::vector<std::vector<int32_t>>> lists(s.hq);
  for (int h = 0; h < s.hq; ++h) {
    for (const auto& qb : st.blocks[h]) lists[h].emplace_back(qb.begin(), qb.end());
  }
  const BlockListSelection sel(lists, block, 1, s.kv_length - s.num_queries);
  RunBlockCase(pb, sel, chosen.selection, block);
}

INSTANTIATE_TEST_SUITE_P(Shapes, BlockSparsePrefillTest,
                         ::testing::Values(BlockCase{{1023, 1023, 8, 1, 128}, 128, 3},
                                           BlockCase{{4097, 4097, 4, 4, 64}, 128, 5},
                                           BlockCase{{1023, 1023, 7, 1, 256}, 128, 3},
                                           BlockCase{{113, 113, 8, 2, 128}, 128, 1},
                                           BlockCase{{1023, 1023, 4, 1, 128}, 256, 2},
                                           BlockCase{{1023, 1023, 8, 1, 128}, 16, 12},
                                           BlockCase{{1023, 1023, 8, 2, 64}, 32, 6},
                                           BlockCase{{1023, 1023, 7, 1, 256}, 64, 4},
                                           BlockCase{{4097, 4097, 4, 1, 128}, 16, 20},
                                           BlockCase{{17, 17, 4, 1, 128}, 16, 1},
                                           BlockCase{{2049, 2049, 32, 4, 64}, 16, 8}),
                         [](const ::testing::TestParamInfo<BlockCase>& c) {
                           return absl::StrCat(Name(c.param.shape), "_b", c.param.block);
                         });

// Lists shared per KV head, chunked, some query blocks listing only keys after their rows
// (those rows see nothing: output 0, lse -inf) and some listing nothing at all.
TEST(BlockSparsePrefill, SharedListsWithEmptyRows_ZeroOutputAndMinusInfLse) {
  const Shape s{700, 1100, 8, 2, 128};
  std::mt19937 rng(11);
  const Problem pb(s, s.kv_length, rng);
  const int block = 128;
  const int64_t q_offset = s.kv_length - s.num_queries;
  const int nqb = (s.num_queries + block - 1) / block;
  const int nkb = (s.kv_length + block - 1) / block;
  std::vector<std::vector<std::vector<int32_t>>> lists(s.hkv);
  std::uniform_int_distribution<int> coin(0, 3);
  for (int g = 0; g < s.hkv; ++g) {
    for (int b = 0; b < nqb; ++b) {
      std::vector<int32_t> list;
      const int after_last_row =
          static_cast<int>((q_offset + std::min<int64_t>((b + 1) * block, s.num_queries) - 1) /
                           block) +
          1;
      if (g == 1 && b == 1) {
        // Nothing.
      } else if (g == 0 && b == 2 && after_last_row < nkb) {
        list.push_back(after_last_row);  // only keys after every row of the block
      } else {
        for (int c = 0; c < nkb; ++c)
          if (coin(rng) == 0 || c == 0) list.push_back(c);
      }
      lists[g].push_back(list);
    }
  }
  auto sel = std::make_shared<BlockListSelection>(lists, block, s.hq / s.hkv, q_offset);
  RunBlockCase(pb, *sel, sel, block);
}

// A line selection given as lists (per query head or per KV head), with the CPU view of
// the same keys: row i at position p sees k <= p iff k is a column or p - k a diagonal.
class LineListSelection : public kernels::Selection {
 public:
  LineListSelection(std::vector<std::vector<int32_t>> columns,
                    std::vector<std::vector<int32_t>> diagonals, int group, int64_t q_offset)
      : columns_(std::move(columns)),
        diagonals_(std::move(diagonals)),
        group_(group),
        q_offset_(q_offset) {}
  void Row(int64_t h, int64_t i, std::vector<KeyRange>* out) const override {
    out->clear();
    const int64_t lh = h / group_, pos = q_offset_ + i;
    std::vector<int64_t> keys;
    for (int32_t c : columns_[lh])
      if (c <= pos) keys.push_back(c);
    for (int32_t d : diagonals_[lh])
      if (d <= pos) keys.push_back(pos - d);
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    for (int64_t k : keys) {
      if (!out->empty() && out->back().end == k) {
        out->back().end = k + 1;
      } else {
        out->push_back({k, k + 1});
      }
    }
  }
  static void Flatten(const std::vector<std::vector<int32_t>>& lists, std::vector<int32_t>* offsets,
                      std::vector<int32_t>* items) {
    offsets->assign(1, 0);
    items->clear();
    for (const auto& l : lists) {
      items->insert(items->end(), l.begin(), l.end());
      offsets->push_back(static_cast<int32_t>(items->size()));
    }
  }
  const std::vector<std::vector<int32_t>>& columns() const { return columns_; }
  const std::vector<std::vector<int32_t>>& diagonals() const { return diagonals_; }

 private:
  std::vector<std::vector<int32_t>> columns_;
  std::vector<std::vector<int32_t>> diagonals_;
  int group_;
  int64_t q_offset_;
};

void RunLineCase(const Problem& pb, const LineListSelection& lines,
                 std::shared_ptr<const kernels::Selection> cpu_sel) {
  std::vector<int32_t> col_off, cols, diag_off, diags;
  LineListSelection::Flatten(lines.columns(), &col_off, &cols);
  LineListSelection::Flatten(lines.diagonals(), &diag_off, &diags);
  Device<int32_t> d_col_off(col_off), d_cols(cols), d_diag_off(diag_off), d_diags(diags);
  LineSelection sel;
  sel.heads.count = static_cast<int32_t>(lines.columns().size());
  sel.column_offsets = d_col_off.get();
  sel.columns = d_cols.get();
  sel.diagonal_offsets = d_diag_off.get();
  sel.diagonals = d_diags.get();
  const kernels::AttentionResult ref = kernels::AttendSelected(pb.Input(), cpu_sel);
  for (const auto& [schedule, label] : kSchedules) {
    const KernelResult got = RunKernel(
        pb, false, [&](const AttentionParams& p) { return PrefillLines(p, sel, schedule); });
    ExpectMatches(pb, got, ref, *cpu_sel, label);
  }
}

struct LineCase {
  Shape shape;
  int verticals;
  int slashes;
};

class VerticalSlashPrefillTest : public ::testing::TestWithParam<LineCase> {};

// The CPU's vertical_slash choice (per query head), as a LineSelection.
TEST_P(VerticalSlashPrefillTest, CpuSelection_MatchesReference) {
  const Shape s = GetParam().shape;
  std::mt19937 rng(static_cast<uint32_t>(s.num_queries * 3 + s.head_dim + s.hq));
  const Problem pb(s, s.kv_length, rng);
  kernels::VerticalSlashParams vp;
  vp.last_q = 64;
  vp.sink = 4;
  vp.local = 32;
  vp.verticals = GetParam().verticals;
  vp.slashes = GetParam().slashes;
  SF_ASSERT_OK_AND_ASSIGN(auto chosen,
                          kernels::testing::PrefillSelectTyped("vertical_slash", vp, pb.Input()));
  const kernels::SelectionStructure st = kernels::DescribeSelection(*chosen.selection);
  ASSERT_EQ(static_cast<int>(st.columns.size()), s.hq);
  std::vector<std::vector<int32_t>> cols(s.hq), diags(s.hq);
  for (int h = 0; h < s.hq; ++h) {
    cols[h].assign(st.columns[h].begin(), st.columns[h].end());
    diags[h].assign(st.offsets[h].begin(), st.offsets[h].end());
  }
  const LineListSelection lines(cols, diags, 1, s.kv_length - s.num_queries);
  RunLineCase(pb, lines, chosen.selection);
}

INSTANTIATE_TEST_SUITE_P(Shapes, VerticalSlashPrefillTest,
                         ::testing::Values(LineCase{{1023, 1023, 8, 1, 128}, 64, 64},
                                           LineCase{{4097, 4097, 4, 1, 128}, 200, 300},
                                           LineCase{{1023, 1023, 8, 2, 64}, 100, 40},
                                           LineCase{{1023, 1023, 7, 1, 256}, 64, 64},
                                           LineCase{{113, 113, 4, 4, 128}, 16, 40},
                                           LineCase{{2049, 2049, 32, 4, 64}, 64, 64}),
                         [](const ::testing::TestParamInfo<LineCase>& c) {
                           return Name(c.param.shape);
                         });

// Streaming (sink columns plus a window of diagonals), shared per KV head, chunked; and
// per-KV-head random lines where some rows see nothing (no column at or before them and
// diagonals only beyond their position).
TEST(LinePrefill, StreamingAndSparseRandomLines_MatchReference) {
  const Shape s{700, 1500, 8, 2, 128};
  std::mt19937 rng(17);
  const Problem pb(s, s.kv_length, rng);
  const int64_t q_offset = s.kv_length - s.num_queries;
  {
    std::vector<std::vector<int32_t>> cols(s.hkv, {0, 1, 2, 3}), diags(s.hkv);
    for (int d = 0; d < 300; ++d) diags[0].push_back(d);  // covers whole tiles
    for (int d = 0; d < 64; ++d) diags[1].push_back(d);
    auto lines = std::make_shared<LineListSelection>(cols, diags, s.hq / s.hkv, q_offset);
    RunLineCase(pb, *lines, lines);
  }
  {
    std::vector<std::vector<int32_t>> cols(s.hkv), diags(s.hkv);
    std::uniform_int_distribution<int> key(0, static_cast<int>(s.kv_length) - 1);
    for (int i = 0; i < 40; ++i) cols[0].push_back(key(rng));
    for (int i = 0; i < 40; ++i) diags[0].push_back(key(rng));
    // Head 1: a column late in the cache and diagonals larger than early rows' positions.
    cols[1] = {1400};
    diags[1] = {1000, 1100};
    for (auto& l : cols) {
      std::sort(l.begin(), l.end());
      l.erase(std::unique(l.begin(), l.end()), l.end());
    }
    for (auto& l : diags) {
      std::sort(l.begin(), l.end());
      l.erase(std::unique(l.begin(), l.end()), l.end());
    }
    auto lines = std::make_shared<LineListSelection>(cols, diags, s.hq / s.hkv, q_offset);
    RunLineCase(pb, *lines, lines);
  }
}

// Sorted, distinct values of `v`.
std::vector<int32_t> Distinct(std::vector<int32_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// Each of [0, n) with probability `p`.
std::vector<int32_t> RandomSubset(int n, double p, std::mt19937& rng) {
  std::bernoulli_distribution keep(p);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i)
    if (keep(rng)) out.push_back(i);
  return out;
}

// Long lists, chunked (the query tiles start off the key tiles' grid): a band of every
// offset (every band tile whole), near-dense random lists (bitmaps with most bits set),
// thousands of columns beside a narrow band (many packed tiles, and columns inside band
// tiles skipped), and thousands of scattered diagonals with a run of columns that fills
// whole key tiles.
TEST(LinePrefill, ThousandsOfLinesAndFullBands_MatchReference) {
  for (const Shape& s :
       {Shape{1700, 2100, 4, 2, 128}, Shape{900, 1200, 2, 1, 256}, Shape{1000, 1200, 4, 2, 64}}) {
    SCOPED_TRACE(Name(s));
    std::mt19937 rng(static_cast<uint32_t>(s.kv_length + s.head_dim));
    const Problem pb(s, s.kv_length, rng);
    const int64_t q_offset = s.kv_length - s.num_queries;
    const int n = static_cast<int>(s.kv_length);
    std::uniform_int_distribution<int> key(0, n - 1);
    {
      std::vector<std::vector<int32_t>> cols(s.hkv), diags(s.hkv);
      cols[0] = {0, 1, 2, 3};
      for (int d = 0; d < n; ++d) diags[0].push_back(d);
      if (s.hkv > 1) {
        cols[1] = RandomSubset(n, 0.6, rng);
        diags[1] = RandomSubset(n, 0.8, rng);
      } else {
        cols[0] = RandomSubset(n, 0.6, rng);
        diags[0] = RandomSubset(n, 0.8, rng);
      }
      auto lines = std::make_shared<LineListSelection>(cols, diags, s.hq / s.hkv, q_offset);
      RunLineCase(pb, *lines, lines);
    }
    {
      std::vector<std::vector<int32_t>> cols(s.hkv), diags(s.hkv);
      for (int i = 0; i < 1200; ++i) cols[0].push_back(key(rng));
      for (int d = 0; d < 16; ++d) diags[0].push_back(d);
      if (s.hkv > 1) {
        for (int i = 0; i < 1000; ++i) diags[1].push_back(key(rng));
        for (int c = 256; c < 768; ++c) cols[1].push_back(c);
      }
      for (auto& l : cols) l = Distinct(l);
      for (auto& l : diags) l = Distinct(l);
      auto lines = std::make_shared<LineListSelection>(cols, diags, s.hq / s.hkv, q_offset);
      RunLineCase(pb, *lines, lines);
    }
  }
}

}  // namespace
}  // namespace sf::cuda
