// tri_shape's CPU selection against its definition (docs/methods.md): the keys of
// every row, the measured compression against the closed form, compression 1 against
// dense, and its errors.
#include <cstdint>
#include <random>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/fidelity.h"
#include "kernels/cpu/method_params.h"
#include "methods/registry.h"

namespace sf::kernels {
namespace {

using ::sf::testing::StatusIs;
using ::testing::HasSubstr;

LayerQkv RandomQkv(int64_t hq, int64_t hkv, int64_t len, int64_t dim, uint64_t seed) {
  LayerQkv t{Tensor(hq, len, dim), Tensor(hkv, len, dim), Tensor(hkv, len, dim)};
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n01(0.0f, 1.0f);
  for (Tensor* x : {&t.q, &t.k, &t.v}) {
    for (float& f : x->data) f = n01(rng);
  }
  return t;
}

ParamMap Params(int64_t sink, int64_t last_q, int64_t window) {
  return {{"sink", sink}, {"last_q", last_q}, {"window", window}};
}

TEST(TriShapeCpu, Rows_AreSinksWindowOrDenseForTheLastQueries) {
  const LayerQkv t = RandomQkv(2, 1, 40, 64, 1);
  SF_ASSERT_OK_AND_ASSIGN(MethodParams p, ParseMethodParams("tri_shape", Params(2, 5, 4)));
  for (int64_t offset : {0, 17}) {
    const AttentionInput in{t.q.View().Rows(offset, 40 - offset), t.k.View(), t.v.View(), offset};
    SF_ASSERT_OK_AND_ASSIGN(SelectionResult s, PrefillSelect("tri_shape", p, in));
    EXPECT_EQ(s.estimation_flops, 0.0);
    std::vector<KeyRange> row;
    for (int64_t h = 0; h < 2; ++h) {
      for (int64_t i = 0; i < in.q.len; ++i) {
        const int64_t pos = offset + i;
        s.selection->Row(h, i, &row);
        std::vector<char> want(pos + 1, 0), got(pos + 1, 0);
        for (int64_t j = 0; j <= pos; ++j) want[j] = pos >= 35 || j < 2 || j > pos - 4;
        for (const KeyRange& r : row) {
          ASSERT_LT(r.begin, r.end);
          for (int64_t j = r.begin; j < r.end; ++j) got[j] = 1;
        }
        EXPECT_EQ(got, want) << "position " << pos;
      }
    }
  }
}

TEST(TriShapeCpu, MeasuredCompression_EqualsTheClosedForm) {
  const LayerQkv t = RandomQkv(4, 2, 300, 64, 2);
  const AttentionInput in{t.q.View(), t.k.View(), t.v.View(), 0};
  for (double target : {1.0, 2.0, 3.0}) {
    SF_ASSERT_OK_AND_ASSIGN(ParamMap params, ParamsForCompression("tri_shape", {}, target, 300));
    SF_ASSERT_OK_AND_ASSIGN(MethodParams p, ParseMethodParams("tri_shape", params));
    SF_ASSERT_OK_AND_ASSIGN(AttentionResult r, PrefillAttention("tri_shape", p, in));
    SF_ASSERT_OK_AND_ASSIGN(double nominal, NominalCompression("tri_shape", params, 300));
    EXPECT_DOUBLE_EQ(r.compression(), nominal) << target;
  }
}

TEST(TriShapeCpu, CompressionOne_EqualsDense) {
  const LayerQkv t = RandomQkv(4, 2, 131, 128, 3);
  const AttentionInput in{t.q.View(), t.k.View(), t.v.View(), 0};
  SF_ASSERT_OK_AND_ASSIGN(MethodParams dense, ParseMethodParams("dense", {}));
  SF_ASSERT_OK_AND_ASSIGN(AttentionResult want, PrefillAttention("dense", dense, in));
  SF_ASSERT_OK_AND_ASSIGN(ParamMap params, ParamsForCompression("tri_shape", {}, 1.0, 131));
  SF_ASSERT_OK_AND_ASSIGN(MethodParams p, ParseMethodParams("tri_shape", params));
  SF_ASSERT_OK_AND_ASSIGN(AttentionResult got, PrefillAttention("tri_shape", p, in));
  EXPECT_EQ(got.output.data, want.output.data);
}

TEST(TriShapeCpu, FidelityTable_MatchesTheExactPath) {
  SF_ASSERT_OK_AND_ASSIGN(LayerQkv qkv, GenerateStructuredQkv({517, 4, 2, 64, 5}));
  const DenseReference ref = ComputeDenseReference(qkv, Phase::kPrefill, 0);
  SF_ASSERT_OK_AND_ASSIGN(ParamMap params, CalibrateBudget("tri_shape", {}, 3.0, qkv, ref));
  SF_ASSERT_OK_AND_ASSIGN(FidelityResult exact, MeasureFidelity("tri_shape", params, qkv, ref));
  const auto table = MeasureFidelityTable(qkv, {{"tri_shape", {}, 3.0}}, {Phase::kPrefill, 0, 1});
  ASSERT_EQ(table.size(), 1u);
  ASSERT_TRUE(table[0].ok()) << table[0].status();
  EXPECT_EQ(table[0]->params, exact.params);
  EXPECT_DOUBLE_EQ(table[0]->measured_compression, exact.measured_compression);
  EXPECT_NEAR(table[0]->mean_recall(), exact.mean_recall(), 1e-4);
  EXPECT_NEAR(table[0]->mean_error(), exact.mean_error(), 1e-4);
}

TEST(TriShapeCpu, Errors_NameTheParameterOrThePhase) {
  const LayerQkv t = RandomQkv(2, 1, 64, 64, 4);
  const AttentionInput in{t.q.View(), t.k.View(), t.v.View(), 0};
  SF_ASSERT_OK_AND_ASSIGN(MethodParams wide, ParseMethodParams("tri_shape", Params(4, 8, 65)));
  EXPECT_THAT(PrefillSelect("tri_shape", wide, in).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'window'")));
  SF_ASSERT_OK_AND_ASSIGN(MethodParams ok, ParseMethodParams("tri_shape", Params(4, 8, 16)));
  const AttentionInput steps{t.q.View().Rows(48, 16), t.k.View(), t.v.View(), 48};
  EXPECT_THAT(DecodeSelect("tri_shape", ok, steps, t.q.View().Rows(0, 48)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("prefill method")));
  EXPECT_THAT(
      ParseMethodParams("tri_shape", {{"window", int64_t{8}}, {"stripes", int64_t{2}}}).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'stripes'")));
}

}  // namespace
}  // namespace sf::kernels
