#include "analysis/glm.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace sf::analysis {

namespace {

double BinomialDeviance(const Eigen::VectorXd& y, const Eigen::VectorXd& mu,
                        const Eigen::VectorXd& n) {
  double dev = 0.0;
  for (Eigen::Index i = 0; i < y.size(); ++i) {
    if (y[i] > 0) dev += n[i] * y[i] * std::log(y[i] / mu[i]);
    if (y[i] < 1) dev += n[i] * (1.0 - y[i]) * std::log((1.0 - y[i]) / (1.0 - mu[i]));
  }
  return 2.0 * dev;
}

}  // namespace

double Sigmoid(double x) {
  return x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x));
}

absl::StatusOr<GlmFit> FitBinomialGlm(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                                      const Eigen::VectorXd& trials, const GlmOptions& options) {
  const Eigen::Index n = x.rows();
  if (y.size() != n || trials.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("GLM: X has ", n, " rows but y has ", y.size(),
                                                   " and trials ", trials.size()));
  }
  if (n < x.cols()) {
    return absl::InvalidArgumentError(
        absl::StrCat("GLM: ", n, " observations for ", x.cols(), " coefficients"));
  }
  for (Eigen::Index i = 0; i < n; ++i) {
    if (!(y[i] >= 0.0 && y[i] <= 1.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("GLM: response ", i, " is ", y[i], ", outside [0, 1]"));
    }
    if (!(trials[i] > 0.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("GLM: trials of observation ", i, " is ", trials[i], ", must be > 0"));
    }
  }
  Eigen::ColPivHouseholderQR<Eigen::MatrixXd> rank_check(x);
  rank_check.setThreshold(1e-10);
  if (rank_check.rank() < x.cols()) {
    return absl::InvalidArgumentError(absl::StrCat("GLM: design matrix has rank ",
                                                   rank_check.rank(), " < ", x.cols(),
                                                   " columns (collinear or constant predictors)"));
  }
  // statsmodels' start: mu = (n y + 0.5) / (n + 1).
  Eigen::VectorXd mu = ((trials.array() * y.array() + 0.5) / (trials.array() + 1.0)).matrix();
  Eigen::VectorXd eta = (mu.array() / (1.0 - mu.array())).log().matrix();
  Eigen::VectorXd beta = Eigen::VectorXd::Zero(x.cols());
  double dev = BinomialDeviance(y, mu, trials);
  GlmFit fit;
  Eigen::MatrixXd xtwx;
  for (int it = 1; it <= options.max_iterations; ++it) {
    const Eigen::ArrayXd var = mu.array() * (1.0 - mu.array());
    const Eigen::ArrayXd w = trials.array() * var;
    const Eigen::VectorXd z = (eta.array() + (y.array() - mu.array()) / var).matrix();
    xtwx = x.transpose() * w.matrix().asDiagonal() * x;
    const Eigen::VectorXd xtwz = x.transpose() * (w * z.array()).matrix();
    beta = xtwx.ldlt().solve(xtwz);
    eta = x * beta;
    for (Eigen::Index i = 0; i < n; ++i) {
      mu[i] = std::clamp(Sigmoid(eta[i]), 1e-15, 1.0 - 1e-15);
    }
    const double new_dev = BinomialDeviance(y, mu, trials);
    fit.iterations = it;
    const bool done = std::fabs(new_dev - dev) <= options.tolerance * (std::fabs(new_dev) + 0.1);
    dev = new_dev;
    if (done) {
      fit.converged = true;
      break;
    }
  }
  if (!fit.converged) {
    return absl::FailedPreconditionError(absl::StrCat(
        "GLM: IRLS did not converge in ", options.max_iterations,
        " iterations (perfect separation? check for axes where every score is 0 or 1)"));
  }
  // Covariance at the final estimate.
  const Eigen::ArrayXd w = trials.array() * mu.array() * (1.0 - mu.array());
  xtwx = x.transpose() * w.matrix().asDiagonal() * x;
  const Eigen::MatrixXd cov = xtwx.inverse();
  fit.coefficients = beta;
  fit.standard_errors = cov.diagonal().array().sqrt().matrix();
  fit.deviance = dev;
  return fit;
}

}  // namespace sf::analysis
