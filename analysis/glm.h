// Binomial GLM with the logit link, fitted by iteratively reweighted least squares:
// the fitting engine of the scaling law. Responses are fractions in [0, 1] weighted
// by their number of trials (samples), as statsmodels' GLM(Binomial, var_weights=n).
#ifndef SF_ANALYSIS_GLM_H_
#define SF_ANALYSIS_GLM_H_

#include <Eigen/Dense>

#include "absl/status/statusor.h"

namespace sf::analysis {

struct GlmFit {
  Eigen::VectorXd coefficients;
  Eigen::VectorXd standard_errors;  // sqrt(diag((X' W X)^-1)), scale fixed at 1
  double deviance = 0.0;
  int iterations = 0;
  bool converged = false;
};

struct GlmOptions {
  int max_iterations = 100;
  double tolerance = 1e-10;  // on the relative change of the deviance
};

double Sigmoid(double x);

// Fits y ~ Binomial(trials, sigmoid(X beta)) / trials.
// REQUIRES: X rows == y size == trials size.
// Returns InvalidArgument for responses outside [0, 1], non-positive trials or a
// rank-deficient X (name the collinear axes in the caller), and FailedPrecondition
// when IRLS does not converge in max_iterations.
absl::StatusOr<GlmFit> FitBinomialGlm(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                                      const Eigen::VectorXd& trials,
                                      const GlmOptions& options = {});

}  // namespace sf::analysis

#endif  // SF_ANALYSIS_GLM_H_
