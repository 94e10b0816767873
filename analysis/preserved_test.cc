#include "analysis/preserved.h"

#include <cmath>

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace sf::analysis {
namespace {

ResultPoint WithScores(const std::string& method, double comp, const std::vector<double>& s) {
  ResultPoint p;
  p.model = "m";
  p.task = "t";
  p.seq_len = 4096;
  p.method = method;
  p.phase = "prefill";
  p.nominal_compression = comp;
  for (size_t i = 0; i < s.size(); ++i) p.samples.push_back({static_cast<int64_t>(i), s[i]});
  return p;
}

TEST(ComputePreservedCompression, StopsAtFirstSignificantDropAndFlagsNonMonotone) {
  const std::vector<double> dense = {0.9, 0.8, 0.7, 0.9, 0.6, 0.8, 0.7, 0.9, 0.8, 0.6};
  std::vector<double> same_ish = dense, much_worse = dense;
  same_ish[0] -= 0.1;
  same_ish[1] += 0.1;
  for (double& x : much_worse) x -= 0.3;
  much_worse[0] += 0.05;  // keep a non-zero variance
  const std::vector<ResultPoint> pts = {WithScores("dense", 1, dense), WithScores("vs", 20, dense),
                                        WithScores("vs", 10, much_worse),
                                        WithScores("vs", 2, dense), WithScores("vs", 5, same_ish)};
  for (PairedTestKind kind : {PairedTestKind::kTTest, PairedTestKind::kWilcoxon}) {
    SF_ASSERT_OK_AND_ASSIGN(auto out, ComputePreservedCompression(pts, {kind, 0.05}));
    ASSERT_EQ(out.size(), 1u);
    const PreservedCompression& pc = out[0];
    ASSERT_EQ(pc.tests.size(), 4u);
    EXPECT_EQ(pc.tests[0].compression, 2.0);
    EXPECT_FALSE(pc.tests[1].significantly_worse) << PairedTestName(kind);
    EXPECT_TRUE(pc.tests[2].significantly_worse) << PairedTestName(kind);
    EXPECT_NEAR(pc.tests[2].mean_difference, -0.295, 1e-12);
    EXPECT_EQ(pc.preserved, 5.0) << PairedTestName(kind);
    EXPECT_TRUE(pc.non_monotone);
    EXPECT_EQ(pc.tests[0].n_pairs, 10);
  }
}

TEST(ComputePreservedCompression, SameMethodInBothPhases_TestedApart) {
  const std::vector<double> dense = {0.9, 0.8, 0.7, 0.9, 0.6, 0.8, 0.7, 0.9, 0.8, 0.6};
  std::vector<double> worse = dense;
  for (double& x : worse) x -= 0.3;
  worse[0] += 0.05;
  ResultPoint prefill = WithScores("streaming", 2, dense);
  ResultPoint decode = WithScores("streaming", 2, worse);
  decode.phase = "decode";
  SF_ASSERT_OK_AND_ASSIGN(
      auto out, ComputePreservedCompression({WithScores("dense", 1, dense), prefill, decode}, {}));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].phase, "decode");
  EXPECT_EQ(out[0].preserved, 1.0);  // significantly worse at 2
  EXPECT_EQ(out[1].phase, "prefill");
  EXPECT_EQ(out[1].preserved, 2.0);
}

TEST(ComputePreservedCompression, PairsOnlyCommonSamplesAndReportsMissingDense) {
  ResultPoint dense = WithScores("dense", 1, {1, 1, 0, 1});
  ResultPoint sparse = WithScores("q", 4, {1, 0, 1, 1, 0, 0});  // samples 4, 5 unpaired
  ResultPoint orphan = WithScores("q", 4, {1, 0});
  orphan.model = "no_dense_model";
  SF_ASSERT_OK_AND_ASSIGN(auto out, ComputePreservedCompression({dense, sparse, orphan}, {}));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].model, "m");
  EXPECT_EQ(out[0].tests[0].n_pairs, 4);
  EXPECT_EQ(out[1].model, "no_dense_model");
  EXPECT_TRUE(std::isnan(out[1].preserved));
}

// A model that scores 0 dense has nothing to lose: its group is not tested (NaN, flagged),
// instead of counting every compression as preserved.
TEST(ComputePreservedCompression, DenseAtZero_LeftOutInsteadOfPreserved) {
  ResultPoint dense = WithScores("dense", 1, {0, 0, 0, 0});
  ResultPoint sparse2 = WithScores("quest", 2, {0, 0, 0, 0});
  ResultPoint sparse4 = WithScores("quest", 4, {0, 1, 0, 0});
  ResultPoint scoring_dense = WithScores("dense", 1, {1, 1, 0, 1});
  scoring_dense.model = "m2";
  ResultPoint scoring_sparse = WithScores("quest", 2, {1, 1, 0, 1});
  scoring_sparse.model = "m2";
  SF_ASSERT_OK_AND_ASSIGN(
      auto out,
      ComputePreservedCompression({dense, sparse2, sparse4, scoring_dense, scoring_sparse}, {}));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].model, "m");
  EXPECT_TRUE(out[0].dense_at_zero);
  EXPECT_TRUE(std::isnan(out[0].preserved));
  EXPECT_FALSE(IsCensored(out[0]));
  EXPECT_EQ(out[1].model, "m2");
  EXPECT_FALSE(out[1].dense_at_zero);
  EXPECT_FALSE(std::isnan(out[1].preserved));
}

TEST(ComputePreservedCompression, AlphaOutOfRangeIsInvalidArgument) {
  EXPECT_THAT(
      ComputePreservedCompression({}, {PairedTestKind::kTTest, 1.5}),
      ::sf::testing::StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("alpha")));
}

}  // namespace
}  // namespace sf::analysis
