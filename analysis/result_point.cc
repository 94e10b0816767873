#include "analysis/result_point.h"

#include <limits>

namespace sf::analysis {

double ResultPoint::MeanScore() const {
  if (samples.empty()) return std::numeric_limits<double>::quiet_NaN();
  double sum = 0.0;
  for (const SampleScore& s : samples) sum += s.score;
  return sum / static_cast<double>(samples.size());
}

double ResultPoint::Params() const { return params > 0.0 ? params : TotalParams(shape); }

double ResultPoint::Compression(bool prefer_measured) const {
  if (is_dense()) return 1.0;
  if (prefer_measured && measured_compression > 0.0) return measured_compression;
  return nominal_compression;
}

}  // namespace sf::analysis
