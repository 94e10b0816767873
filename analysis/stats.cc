#include "analysis/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace sf::analysis {

namespace {

// Continued fraction for I_x(a, b) by the modified Lentz method; converges fast for
// x < (a + 1) / (a + b + 2), the caller uses the symmetry otherwise.
double BetaContinuedFraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  constexpr double kEps = 1e-15;
  const double qab = a + b, qap = a + 1.0, qam = a - 1.0;
  double c = 1.0;
  double d = 1.0 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1.0) < kEps) break;
  }
  return h;
}

// Average ranks (1-based) of `v`; `tie_term` gets sum over tie groups of (t^3 - t).
std::vector<double> AverageRanks(std::span<const double> v, double* tie_term) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> ranks(v.size());
  double ties = 0.0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double avg = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) ranks[order[k]] = avg;
    const double t = static_cast<double>(j - i + 1);
    ties += t * t * t - t;
    i = j + 1;
  }
  if (tie_term != nullptr) *tie_term = ties;
  return ranks;
}

}  // namespace

double RegularizedIncompleteBeta(double a, double b, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  if (x < (a + 1.0) / (a + b + 2.0)) {
    return std::exp(log_front) * BetaContinuedFraction(a, b, x) / a;
  }
  return 1.0 - std::exp(log_front) * BetaContinuedFraction(b, a, 1.0 - x) / b;
}

double StudentTCdf(double t, double dof) {
  if (std::isnan(t)) return t;
  if (std::isinf(t)) return t > 0 ? 1.0 : 0.0;
  // P(|T| > |t|) = I_{dof / (dof + t^2)}(dof / 2, 1 / 2)
  const double tail = 0.5 * RegularizedIncompleteBeta(dof / 2.0, 0.5, dof / (dof + t * t));
  return t > 0 ? 1.0 - tail : tail;
}

double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

const char* PairedTestName(PairedTestKind kind) {
  return kind == PairedTestKind::kTTest ? "paired t-test" : "Wilcoxon signed-rank";
}

absl::StatusOr<PairedTestKind> ParsePairedTestKind(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "t" || lower == "ttest" || lower == "t-test") return PairedTestKind::kTTest;
  if (lower == "wilcoxon") return PairedTestKind::kWilcoxon;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown paired test '", name, "': use 't' or 'wilcoxon'"));
}

absl::StatusOr<PairedTestResult> PairedOneSidedTest(std::span<const double> treatment,
                                                    std::span<const double> baseline,
                                                    PairedTestKind kind) {
  if (treatment.size() != baseline.size()) {
    return absl::InvalidArgumentError(absl::StrCat("paired test needs equal lengths, got ",
                                                   treatment.size(), " and ", baseline.size()));
  }
  if (treatment.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("paired test needs at least 2 pairs, got ", treatment.size()));
  }
  std::vector<double> d(treatment.size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = treatment[i] - baseline[i];
  PairedTestResult r;
  if (kind == PairedTestKind::kTTest) {
    const double n = static_cast<double>(d.size());
    const double mean = std::accumulate(d.begin(), d.end(), 0.0) / n;
    double ss = 0.0;
    for (double x : d) ss += (x - mean) * (x - mean);
    const double sd = std::sqrt(ss / (n - 1.0));
    r.n = static_cast<int>(d.size());
    r.method = "t";
    if (sd == 0.0) {
      r.statistic = mean < 0 ? -std::numeric_limits<double>::infinity()
                             : (mean > 0 ? std::numeric_limits<double>::infinity() : 0.0);
      r.p_value = mean < 0 ? 0.0 : 1.0;
      return r;
    }
    r.statistic = mean / (sd / std::sqrt(n));
    r.p_value = StudentTCdf(r.statistic, n - 1.0);
    return r;
  }
  const size_t n_all = d.size();
  std::vector<double> nz;
  for (double x : d) {
    if (x != 0.0) nz.push_back(x);
  }
  r.n = static_cast<int>(nz.size());
  if (nz.empty()) {
    r.method = "wilcoxon-normal";
    r.p_value = 1.0;
    return r;
  }
  std::vector<double> abs_d(nz.size());
  for (size_t i = 0; i < nz.size(); ++i) abs_d[i] = std::fabs(nz[i]);
  double tie_term = 0.0;
  const std::vector<double> ranks = AverageRanks(abs_d, &tie_term);
  double r_plus = 0.0;
  for (size_t i = 0; i < nz.size(); ++i) {
    if (nz[i] > 0) r_plus += ranks[i];
  }
  r.statistic = r_plus;
  const double n = static_cast<double>(nz.size());
  const bool exact = n_all <= 50 && nz.size() == n_all && tie_term == 0.0;
  if (exact) {
    // Null distribution of W+: counts of subsets of {1..n} by sum.
    const int nn = static_cast<int>(nz.size());
    const int max_sum = nn * (nn + 1) / 2;
    std::vector<double> count(max_sum + 1, 0.0);
    count[0] = 1.0;
    for (int k = 1; k <= nn; ++k) {
      for (int s = max_sum; s >= k; --s) count[s] += count[s - k];
    }
    const int w = static_cast<int>(std::lround(r_plus));
    double below = 0.0;
    for (int s = 0; s <= w; ++s) below += count[s];
    r.p_value = below / std::ldexp(1.0, nn);
    r.method = "wilcoxon-exact";
    return r;
  }
  const double mean = n * (n + 1.0) / 4.0;
  const double var = n * (n + 1.0) * (2.0 * n + 1.0) / 24.0 - tie_term / 48.0;
  r.method = "wilcoxon-normal";
  if (var <= 0.0) {
    r.p_value = 1.0;
    return r;
  }
  r.p_value = NormalCdf((r_plus - mean) / std::sqrt(var));
  return r;
}

double SpearmanRho(std::span<const double> x, std::span<const double> y) {
  if (x.size() != y.size() || x.size() < 2) return std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> rx = AverageRanks(x, nullptr);
  const std::vector<double> ry = AverageRanks(y, nullptr);
  const double n = static_cast<double>(x.size());
  const double mx = std::accumulate(rx.begin(), rx.end(), 0.0) / n;
  const double my = std::accumulate(ry.begin(), ry.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < rx.size(); ++i) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) * (rx[i] - mx);
    syy += (ry[i] - my) * (ry[i] - my);
  }
  if (sxx == 0 || syy == 0) return std::numeric_limits<double>::quiet_NaN();
  return sxy / std::sqrt(sxx * syy);
}

}  // namespace sf::analysis
