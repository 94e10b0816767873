#include "analysis/result_point.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sf::analysis {

double ResultPoint::MeanScore() const {
  if (samples.empty()) return std::numeric_limits<double>::quiet_NaN();
  double sum = 0.0;
  for (const SampleScore& s : samples) sum += s.score;
  return sum / static_cast<double>(samples.size());
}

double ResultPoint::StandardErrorOfMean() const {
  const size_t n = samples.size();
  if (n < 2) return 0.0;
  double sum = 0, sum_sq = 0;
  for (const SampleScore& s : samples) {
    sum += s.score;
    sum_sq += s.score * s.score;
  }
  const double mean = sum / static_cast<double>(n);
  const double variance =
      std::max(0.0, (sum_sq - static_cast<double>(n) * mean * mean) / static_cast<double>(n - 1));
  return std::sqrt(variance / static_cast<double>(n));
}

double ResultPoint::Params() const { return params > 0.0 ? params : TotalParams(shape); }

double ResultPoint::Compression(bool prefer_measured) const {
  if (is_dense()) return 1.0;
  if (prefer_measured && measured_compression > 0.0) return measured_compression;
  return nominal_compression;
}

}  // namespace sf::analysis
