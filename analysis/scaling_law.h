// The study's scaling law: score ~ sigmoid(eps + delta_task + a ln N + b ln L + c ln C),
// a binomial GLM per phase (dense points count in both phases with C = 1), and its
// held-out validation (the largest value of each axis held out in turn).
#ifndef SF_ANALYSIS_SCALING_LAW_H_
#define SF_ANALYSIS_SCALING_LAW_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "analysis/result_point.h"

namespace sf::analysis {

struct ScalingLawOptions {
  bool prefer_measured_compression = true;
};

struct ScalingLawFit {
  std::string phase;
  std::vector<std::string> tasks;  // sorted; the first is the reference task
  std::vector<std::string> names;  // "eps", "delta[task]"..., "a_lnN", "b_lnL", "c_lnC"
  std::vector<double> coefficients;
  std::vector<double> standard_errors;
  std::vector<std::string> dropped;  // axes without variation (not estimated)
  double deviance = 0.0;
  int n_points = 0;
  int iterations = 0;

  // The model's predicted score for `p`; NaN for a task the fit has not seen.
  double Predict(const ResultPoint& p, const ScalingLawOptions& options) const;
  // The coefficient called `name`, or NaN.
  double Coefficient(const std::string& name) const;
};

// Fits the law on the dense points and the sparse points of `phase` (points without
// samples are left out; each point is one observation weighted by its sample count).
// Returns InvalidArgument when scores lie outside [0, 1] or too few points remain.
absl::StatusOr<ScalingLawFit> FitScalingLaw(const std::vector<ResultPoint>& points,
                                            const std::string& phase,
                                            const ScalingLawOptions& options = {});

struct HoldoutValidation {
  std::string axis;  // "N", "L" or "C"
  double held_value = 0.0;
  int n_train = 0;
  int n_test = 0;
  double r2 = 0.0;
  double spearman = 0.0;
  double mae = 0.0;
  std::vector<double> observed;
  std::vector<double> predicted;
  std::string error;  // why this axis could not be validated, else ""
};

// Holds out the points at the largest N, L and C in turn, fits on the rest, and
// scores the predictions on the held-out points.
std::vector<HoldoutValidation> ValidateScalingLaw(const std::vector<ResultPoint>& points,
                                                  const std::string& phase,
                                                  const ScalingLawOptions& options = {});

}  // namespace sf::analysis

#endif  // SF_ANALYSIS_SCALING_LAW_H_
