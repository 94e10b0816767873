#include "analysis/stats.h"

#include <cmath>
#include <vector>

#include "analysis/test_fixtures.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace sf::analysis {
namespace {

using ::sf::testing::StatusIs;
using testing::ReadJsonFixture;

TEST(RegularizedIncompleteBeta, MatchesScipyBetainc) {
  const nlohmann::json ref = ReadJsonFixture("paired_reference.json");
  ASSERT_FALSE(ref["betainc"].empty());
  for (const auto& p : ref["betainc"]) {
    const double got = RegularizedIncompleteBeta(p["a"], p["b"], p["x"]);
    EXPECT_NEAR(got, p["value"].get<double>(), 1e-12 * std::max(1.0, p["value"].get<double>()))
        << "a=" << p["a"] << " b=" << p["b"] << " x=" << p["x"];
  }
}

TEST(StudentTCdf, MatchesScipyOnGrid) {
  const nlohmann::json ref = ReadJsonFixture("paired_reference.json");
  ASSERT_EQ(ref["t_cdf"].size(), 48u);
  for (const auto& p : ref["t_cdf"]) {
    const double want = p["cdf"];
    EXPECT_NEAR(StudentTCdf(p["t"], p["dof"]), want, 1e-12 + 1e-10 * want)
        << "t=" << p["t"] << " dof=" << p["dof"];
  }
}

TEST(PairedOneSidedTest, MatchesScipyOnFixedCases) {
  const nlohmann::json data = ReadJsonFixture("paired_cases.json");
  const nlohmann::json ref = ReadJsonFixture("paired_reference.json");
  ASSERT_EQ(data["cases"].size(), ref["cases"].size());
  for (size_t i = 0; i < data["cases"].size(); ++i) {
    const auto& c = data["cases"][i];
    const auto& r = ref["cases"][i];
    const std::vector<double> t = c["treatment"], b = c["baseline"];
    SF_ASSERT_OK_AND_ASSIGN(PairedTestResult tt, PairedOneSidedTest(t, b, PairedTestKind::kTTest));
    EXPECT_NEAR(tt.statistic, r["t_statistic"].get<double>(), 1e-10) << c["name"];
    EXPECT_NEAR(tt.p_value, r["t_p"].get<double>(), 1e-12) << c["name"];
    SF_ASSERT_OK_AND_ASSIGN(PairedTestResult w,
                            PairedOneSidedTest(t, b, PairedTestKind::kWilcoxon));
    EXPECT_DOUBLE_EQ(w.statistic, r["wilcoxon_statistic"].get<double>()) << c["name"];
    EXPECT_NEAR(w.p_value, r["wilcoxon_p"].get<double>(), 1e-12) << c["name"];
    EXPECT_EQ(w.method,
              "wilcoxon-" + std::string(r["wilcoxon_method"] == "exact" ? "exact" : "normal"))
        << c["name"];
  }
}

TEST(PairedOneSidedTest, ZeroVarianceGivesDefinitePValue) {
  const std::vector<double> base = {1, 1, 1, 1}, worse = {0.5, 0.5, 0.5, 0.5};
  EXPECT_EQ(PairedOneSidedTest(worse, base, PairedTestKind::kTTest)->p_value, 0.0);
  EXPECT_EQ(PairedOneSidedTest(base, base, PairedTestKind::kTTest)->p_value, 1.0);
  EXPECT_EQ(PairedOneSidedTest(base, base, PairedTestKind::kWilcoxon)->p_value, 1.0);
}

TEST(PairedOneSidedTest, MismatchedOrTooShortIsInvalidArgument) {
  const std::vector<double> a = {1, 2, 3}, b = {1, 2}, one = {1};
  EXPECT_THAT(PairedOneSidedTest(a, b, PairedTestKind::kTTest),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("equal")));
  EXPECT_THAT(PairedOneSidedTest(one, one, PairedTestKind::kWilcoxon),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("2 pairs")));
}

TEST(ParsePairedTestKind, AcceptsFlagSpellings) {
  EXPECT_EQ(*ParsePairedTestKind("T-Test"), PairedTestKind::kTTest);
  EXPECT_EQ(*ParsePairedTestKind("wilcoxon"), PairedTestKind::kWilcoxon);
  EXPECT_THAT(ParsePairedTestKind("anova"),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("'wilcoxon'")));
}

TEST(SpearmanRho, HandlesTiesAndMonotoneMaps) {
  const std::vector<double> x = {1, 2, 3, 4, 5}, y = {2, 4, 8, 16, 32};
  EXPECT_DOUBLE_EQ(SpearmanRho(x, y), 1.0);
  // Ranks x = 1..4, y = 1.5, 1.5, 3, 4: rho = 4.5 / sqrt(5 * 4.5) = 0.9486832980505138.
  const std::vector<double> a = {1, 2, 3, 4}, b = {7, 7, 8, 9};
  EXPECT_NEAR(SpearmanRho(a, b), 0.9486832980505138, 1e-15);
  EXPECT_TRUE(std::isnan(SpearmanRho(a, std::vector<double>{1, 1, 1, 1})));
}

}  // namespace
}  // namespace sf::analysis
