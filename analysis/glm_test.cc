#include "analysis/glm.h"

#include <cmath>
#include <random>

#include "analysis/test_fixtures.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace sf::analysis {
namespace {

using ::sf::testing::StatusIs;

// Builds the design the fixtures' reference used: intercept, task dummies (all but the
// first task in sorted order), ln N, ln L, ln C.
void CheckAgainstStatsmodels(const std::string& name) {
  const std::vector<testing::GlmRow> rows = testing::ReadGlmCsv("glm_" + name + ".csv");
  const nlohmann::json ref = testing::ReadJsonFixture("glm_" + name + "_reference.json");
  const std::vector<std::string> names = ref["names"];
  ASSERT_EQ(names.size(), 6u);
  Eigen::MatrixXd x(rows.size(), names.size());
  Eigen::VectorXd y(rows.size()), n(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    x.row(i) << 1.0, r.task == "ruler_niah", r.task == "story_retrieval", std::log(r.n_params),
        std::log(r.seq_len), std::log(r.compression);
    y[i] = r.score;
    n[i] = r.samples;
  }
  SF_ASSERT_OK_AND_ASSIGN(GlmFit fit, FitBinomialGlm(x, y, n));
  EXPECT_TRUE(fit.converged);
  for (size_t k = 0; k < names.size(); ++k) {
    const double want_b = ref["coefficients"][k], want_se = ref["standard_errors"][k];
    EXPECT_NEAR(fit.coefficients[k], want_b, 1e-8 * std::max(1.0, std::fabs(want_b)))
        << name << " " << names[k];
    EXPECT_NEAR(fit.standard_errors[k], want_se, 1e-8 * want_se) << name << " " << names[k];
  }
  EXPECT_NEAR(fit.deviance, ref["deviance"].get<double>(), 1e-8 * ref["deviance"].get<double>());
}

TEST(FitBinomialGlm, BinomialCountsMatchStatsmodels) { CheckAgainstStatsmodels("binomial"); }

TEST(FitBinomialGlm, FractionalScoresMatchStatsmodels) { CheckAgainstStatsmodels("fractional"); }

TEST(FitBinomialGlm, CollinearDesignIsInvalidArgument) {
  Eigen::MatrixXd x(4, 2);
  x << 1, 2, 1, 2, 1, 2, 1, 2;
  Eigen::VectorXd y(4), n(4);
  y << 0.1, 0.2, 0.3, 0.4;
  n << 10, 10, 10, 10;
  EXPECT_THAT(FitBinomialGlm(x, y, n),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("rank")));
}

TEST(FitBinomialGlm, ResponseOutsideUnitIntervalIsInvalidArgument) {
  Eigen::MatrixXd x(3, 1);
  x << 1, 1, 1;
  Eigen::VectorXd y(3), n(3);
  y << 0.1, 1.5, 0.3;
  n << 10, 10, 10;
  EXPECT_THAT(FitBinomialGlm(x, y, n),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("outside [0, 1]")));
}

}  // namespace
}  // namespace sf::analysis
