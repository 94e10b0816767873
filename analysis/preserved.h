// Preserved compression: per (model, task, length, method) the largest compression
// whose per-sample scores are not significantly worse than dense on the same samples.
#ifndef SF_ANALYSIS_PRESERVED_H_
#define SF_ANALYSIS_PRESERVED_H_

#include <cstdint>
#include <string>
#include <vector>

#include "analysis/result_point.h"
#include "analysis/stats.h"

namespace sf::analysis {

struct PreservedOptions {
  PairedTestKind test = PairedTestKind::kTTest;
  double alpha = 0.05;
};

struct CompressionTest {
  double compression = 1.0;  // nominal
  int n_pairs = 0;
  double mean_difference = 0.0;  // mean(sparse - dense) over paired samples
  double p_value = 1.0;          // NaN when the test could not run (< 2 pairs)
  bool significantly_worse = false;
};

struct PreservedCompression {
  std::string model;
  std::string task;
  int64_t seq_len = 0;
  std::string method;
  std::string phase;
  std::vector<CompressionTest> tests;  // ascending compression
  // Largest compression such that it and every smaller tested one are not
  // significantly worse; 1 when the smallest already is; NaN when nothing could be
  // tested (no dense baseline, < 2 paired samples, or dense_at_zero).
  double preserved = 1.0;
  // True when dense scored 0 on every paired sample: there is no score to lose, so no
  // compression can be significantly worse and the group says nothing about the method.
  bool dense_at_zero = false;
  // True when a larger compression passes after one failed (the table reports the
  // contiguous value; this flags the non-monotone case).
  bool non_monotone = false;
};

// True when even the largest tested compression passed: the preserved compression is
// then at least that value (censored by the grid), and reports show it as ">= value".
bool IsCensored(const PreservedCompression& pc);

// Pairs each sparse point with the dense point of the same (model, task, length) on
// common sample indices. REQUIRES: 0 < alpha < 1 (else InvalidArgument).
absl::StatusOr<std::vector<PreservedCompression>> ComputePreservedCompression(
    const std::vector<ResultPoint>& points, const PreservedOptions& options);

}  // namespace sf::analysis

#endif  // SF_ANALYSIS_PRESERVED_H_
