// The public typed parameters of the methods a CUDA selection reads
// (kernels/cpu/methods/<name>.h): read from a ParamMap with the registry's defaults and
// checks, and bound to the same CPU selection ParseMethodParams gives.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/method_params.h"
#include "kernels/cpu/methods/block_sparse.h"
#include "kernels/cpu/methods/flexprefill.h"
#include "kernels/cpu/methods/snapkv.h"
#include "kernels/cpu/methods/streaming.h"
#include "kernels/cpu/methods/vertical_slash.h"
#include "kernels/cpu/methods/xattention.h"
#include "methods/registry.h"

namespace sf::kernels {
namespace {

TEST(MethodParamsHeaders, EmptyMap_GivesTheRegistryDefaults) {
  SF_ASSERT_OK_AND_ASSIGN(VerticalSlashParams vs,
                          VerticalSlashParamsFrom(ParamMap{{"verticals", int64_t{100}}}));
  EXPECT_EQ(vs.last_q, 256);
  EXPECT_EQ(vs.sink, 4);
  EXPECT_EQ(vs.local, 64);
  EXPECT_EQ(vs.verticals, 100);
  EXPECT_EQ(vs.slashes, 100);  // follows verticals when not given
  SF_ASSERT_OK_AND_ASSIGN(FlexPrefillParams fp, FlexPrefillParamsFrom(ParamMap{}));
  EXPECT_DOUBLE_EQ(fp.gamma, 0.65);
  EXPECT_EQ(fp.block, 128);
  EXPECT_FALSE(fp.original);
  SF_ASSERT_OK_AND_ASSIGN(fp,
                          FlexPrefillParamsFrom(ParamMap{{"variant", std::string("original")}}));
  EXPECT_TRUE(fp.original);
  SF_ASSERT_OK_AND_ASSIGN(XAttentionParams xp, XAttentionParamsFrom(ParamMap{}));
  EXPECT_EQ(xp.stride, 8);
  EXPECT_DOUBLE_EQ(xp.threshold, 0.9);
  SF_ASSERT_OK_AND_ASSIGN(BlockSparseParams bp,
                          BlockSparseParamsFrom(ParamMap{{"block_budget", int64_t{3}}}));
  EXPECT_EQ(bp.block, 16);
  EXPECT_EQ(bp.block_budget, 3);
  SF_ASSERT_OK_AND_ASSIGN(StreamingParams sp,
                          StreamingParamsFrom(ParamMap{{"window", int64_t{9}}}));
  EXPECT_EQ(sp.sink, 4);
  EXPECT_EQ(sp.window, 9);
}

TEST(MethodParamsHeaders, BadMap_InvalidArgumentNamingTheParameter) {
  absl::StatusOr<VerticalSlashParams> vs =
      VerticalSlashParamsFrom(ParamMap{{"verticals", int64_t{10}}, {"bogus", int64_t{1}}});
  ASSERT_EQ(vs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(vs.status().message().find("bogus"), std::string::npos) << vs.status();
  absl::StatusOr<XAttentionParams> xp = XAttentionParamsFrom(ParamMap{{"threshold", 2.0}});
  ASSERT_EQ(xp.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(xp.status().message().find("threshold"), std::string::npos) << xp.status();
  absl::StatusOr<BlockSparseParams> bp = BlockSparseParamsFrom(ParamMap{});
  ASSERT_EQ(bp.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bp.status().message().find("block_budget"), std::string::npos) << bp.status();
}

struct Data {
  int64_t hq = 4, hkv = 2, len = 96, dim = 16;
  std::vector<float> q, k, v;
  Data() {
    std::mt19937 rng(7);
    std::normal_distribution<float> n(0.0f, 1.0f);
    for (auto* x : {&q, &k, &v}) {
      x->resize((x == &q ? hq : hkv) * len * dim);
      for (float& f : *x) f = n(rng);
    }
  }
  TensorView View(const std::vector<float>& x, int64_t heads) const {
    return {x.data(), heads, len, dim, len * dim, dim};
  }
  AttentionInput Input() const { return {View(q, hq), View(k, hkv), View(v, hkv), 0}; }
};

TEST(MethodParamsHeaders, TypedBinding_SelectsAsParseMethodParams) {
  const Data d;
  const ParamMap map = {{"last_q", int64_t{32}}, {"local", int64_t{8}}, {"verticals", int64_t{20}}};
  SF_ASSERT_OK_AND_ASSIGN(MethodParams parsed, ParseMethodParams("vertical_slash", map));
  SF_ASSERT_OK_AND_ASSIGN(VerticalSlashParams typed, VerticalSlashParamsFrom(map));
  SF_ASSERT_OK_AND_ASSIGN(SelectionResult a, PrefillSelect("vertical_slash", parsed, d.Input()));
  SF_ASSERT_OK_AND_ASSIGN(
      SelectionResult b,
      PrefillSelect("vertical_slash", VerticalSlashMethodParams(typed), d.Input()));
  const SelectionStructure sa = DescribeSelection(*a.selection);
  const SelectionStructure sb = DescribeSelection(*b.selection);
  EXPECT_EQ(sa.columns, sb.columns);
  EXPECT_EQ(sa.offsets, sb.offsets);
  EXPECT_DOUBLE_EQ(a.estimation_flops, b.estimation_flops);
}

TEST(MethodParamsHeaders, SnapKvFloor_MakesAdaSnapKvAdaptive) {
  const MethodInfo* ada = FindMethod("ada_snapkv");
  ASSERT_NE(ada, nullptr);
  const ParamMap map = {{"token_capacity", int64_t{16}}, {"floor", 0.5}};
  SF_ASSERT_OK_AND_ASSIGN(SnapKvParams p, SnapKvParamsFrom(ParamReader(*ada, map)));
  EXPECT_TRUE(p.adaptive);
  EXPECT_DOUBLE_EQ(p.floor, 0.5);
  const MethodInfo* plain = FindMethod("snapkv");
  ASSERT_NE(plain, nullptr);
  const ParamMap plain_map = {{"token_capacity", int64_t{16}}};
  SF_ASSERT_OK_AND_ASSIGN(p, SnapKvParamsFrom(ParamReader(*plain, plain_map)));
  EXPECT_FALSE(p.adaptive);
  EXPECT_EQ(p.token_capacity, 16);
}

}  // namespace
}  // namespace sf::kernels
