// Distributions and paired one-sided tests for "is the sparse method worse than dense
// on the same samples": Student t via the regularized incomplete beta, the Wilcoxon
// signed-rank test (exact for small untied samples, else normal with tie correction).
#ifndef SF_ANALYSIS_STATS_H_
#define SF_ANALYSIS_STATS_H_

#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sf::analysis {

// I_x(a, b), the regularized incomplete beta function, for a, b > 0 and x in [0, 1]
// (continued fraction, relative accuracy ~1e-14).
double RegularizedIncompleteBeta(double a, double b, double x);
// P(T <= t) for Student's t with `dof` > 0 degrees of freedom.
double StudentTCdf(double t, double dof);
// P(Z <= z) for the standard normal.
double NormalCdf(double z);

enum class PairedTestKind { kTTest, kWilcoxon };
const char* PairedTestName(PairedTestKind kind);
// "t" / "ttest" / "t-test" or "wilcoxon" (case-insensitive), for command-line flags;
// InvalidArgument naming the accepted values otherwise.
absl::StatusOr<PairedTestKind> ParsePairedTestKind(absl::string_view name);

struct PairedTestResult {
  double statistic = 0.0;  // t, or W+ (sum of ranks of positive differences)
  double p_value = 1.0;    // one-sided: H1 "treatment is worse than baseline"
  int n = 0;               // pairs used (Wilcoxon: non-zero differences)
  std::string method;      // "t", "wilcoxon-exact" or "wilcoxon-normal"
};

// One-sided paired test of H1: mean/median of (treatment - baseline) < 0.
// t-test: t = mean(d) / (sd(d) / sqrt(n)), p = P(T_{n-1} <= t); with zero variance,
// p = 0 when mean(d) < 0 and 1 otherwise (scipy returns NaN there).
// Wilcoxon: zero differences dropped (scipy's zero_method="wilcox"); exact null
// distribution when the original n <= 50 with no zeros and no ties, else the normal
// approximation with tie-corrected variance and no continuity correction. All
// differences zero gives p = 1.
// Returns InvalidArgument when the spans differ in length or hold fewer than 2 pairs.
absl::StatusOr<PairedTestResult> PairedOneSidedTest(std::span<const double> treatment,
                                                    std::span<const double> baseline,
                                                    PairedTestKind kind);

// Spearman's rank correlation (average ranks for ties); NaN when either side is
// constant or there are fewer than 2 values.
double SpearmanRho(std::span<const double> x, std::span<const double> y);

}  // namespace sf::analysis

#endif  // SF_ANALYSIS_STATS_H_
