#include "analysis/scaling_law.h"

#include <cmath>
#include <random>

#include "analysis/glm.h"
#include "analysis/test_fixtures.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace sf::analysis {
namespace {

// A point with `samples` scores whose mean is `score` (the fit only sees the mean and
// the count).
ResultPoint GridPoint(const std::string& task, double n_params, int64_t len, double comp,
                      double score, int samples) {
  ResultPoint p;
  p.model = "m" + std::to_string(static_cast<int64_t>(n_params));
  p.params = n_params;
  p.task = task;
  p.seq_len = len;
  p.method = comp == 1.0 ? "dense" : "block_sparse";
  p.phase = "prefill";
  p.nominal_compression = comp;
  for (int i = 0; i < samples; ++i) p.samples.push_back({i, score});
  return p;
}

TEST(FitScalingLaw, DesignMatchesStatsmodelsOnFixture) {
  std::vector<ResultPoint> pts;
  for (const auto& r : testing::ReadGlmCsv("glm_fractional.csv")) {
    pts.push_back(GridPoint(r.task, r.n_params, static_cast<int64_t>(r.seq_len), r.compression,
                            r.score, static_cast<int>(r.samples)));
  }
  const nlohmann::json ref = testing::ReadJsonFixture("glm_fractional_reference.json");
  SF_ASSERT_OK_AND_ASSIGN(ScalingLawFit fit, FitScalingLaw(pts, "prefill"));
  const std::vector<std::string> names = ref["names"];
  ASSERT_EQ(fit.names, names);
  for (size_t k = 0; k < names.size(); ++k) {
    const double want = ref["coefficients"][k];
    EXPECT_NEAR(fit.coefficients[k], want, 1e-8 * std::max(1.0, std::fabs(want))) << names[k];
    EXPECT_NEAR(fit.standard_errors[k], ref["standard_errors"][k].get<double>(),
                1e-8 * ref["standard_errors"][k].get<double>())
        << names[k];
  }
}

// Draws binomial scores from a known logistic law and checks that the fit recovers
// its coefficients within 4 standard errors, and that held-out validation predicts well.
TEST(FitScalingLaw, RecoversKnownLogisticLaw) {
  const double eps = -1.0, a = 0.3, b = -0.5, c = -0.4;
  const std::map<std::string, double> delta = {{"alpha", 0.0}, {"beta", 0.7}, {"gamma", -0.6}};
  std::mt19937_64 rng(12345);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  std::vector<ResultPoint> pts;
  const int kSamples = 400;
  for (const auto& [task, d] : delta) {
    for (double n : {1e9, 3e9, 8e9, 20e9}) {
      for (int64_t len : {4096, 8192, 16384, 32768}) {
        for (double comp : {1.0, 2.0, 5.0, 10.0, 20.0}) {
          const double p = Sigmoid(eps + d + a * std::log(n) +
                                   b * std::log(static_cast<double>(len)) + c * std::log(comp));
          ResultPoint pt = GridPoint(task, n, len, comp, 0.0, 0);
          for (int i = 0; i < kSamples; ++i) pt.samples.push_back({i, unif(rng) < p ? 1.0 : 0.0});
          pts.push_back(std::move(pt));
        }
      }
    }
  }
  SF_ASSERT_OK_AND_ASSIGN(ScalingLawFit fit, FitScalingLaw(pts, "prefill"));
  const std::map<std::string, double> truth = {{"eps", eps},           {"delta[beta]", 0.7},
                                               {"delta[gamma]", -0.6}, {"a_lnN", a},
                                               {"b_lnL", b},           {"c_lnC", c}};
  ASSERT_EQ(fit.names.size(), truth.size());
  for (size_t k = 0; k < fit.names.size(); ++k) {
    const double want = truth.at(fit.names[k]);
    EXPECT_LT(std::fabs(fit.coefficients[k] - want), 4.0 * fit.standard_errors[k])
        << fit.names[k] << " = " << fit.coefficients[k] << " +- " << fit.standard_errors[k];
  }
  EXPECT_LT(fit.standard_errors[5], 0.02);  // c_lnC is pinned down tightly

  const std::vector<HoldoutValidation> val = ValidateScalingLaw(pts, "prefill");
  ASSERT_EQ(val.size(), 3u);
  for (const HoldoutValidation& v : val) {
    EXPECT_EQ(v.error, "") << v.axis;
    EXPECT_EQ(v.n_test, v.axis == "C" ? 48 : 60) << v.axis;
    EXPECT_GT(v.r2, 0.9) << v.axis;
    EXPECT_GT(v.spearman, 0.9) << v.axis;
    EXPECT_LT(v.mae, 0.03) << v.axis;
  }
  EXPECT_EQ(val[1].held_value, 32768.0);
}

TEST(FitScalingLaw, SingleModelDropsLnNInsteadOfFailing) {
  std::vector<ResultPoint> pts;
  const double scores[] = {0.9, 0.8, 0.75, 0.6, 0.85, 0.7, 0.6, 0.5};
  int i = 0;
  for (int64_t len : {1024, 2048}) {
    for (double comp : {1.0, 2.0, 4.0, 8.0})
      pts.push_back(GridPoint("t", 1e9, len, comp, scores[i++], 50));
  }
  SF_ASSERT_OK_AND_ASSIGN(ScalingLawFit fit, FitScalingLaw(pts, "prefill"));
  EXPECT_EQ(fit.dropped, std::vector<std::string>{"a_lnN"});
  EXPECT_TRUE(std::isnan(fit.Coefficient("a_lnN")));
  EXPECT_LT(fit.Coefficient("c_lnC"), 0.0);
}

}  // namespace
}  // namespace sf::analysis
