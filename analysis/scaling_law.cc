#include "analysis/scaling_law.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "analysis/glm.h"
#include "analysis/stats.h"

namespace sf::analysis {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<const ResultPoint*> PhasePoints(const std::vector<ResultPoint>& points,
                                            const std::string& phase) {
  std::vector<const ResultPoint*> out;
  for (const ResultPoint& p : points) {
    if (p.samples.empty()) continue;
    if (p.is_dense() || p.phase == phase) out.push_back(&p);
  }
  return out;
}

double AxisValue(const ResultPoint& p, const std::string& axis, bool measured) {
  if (axis == "N") return p.Params();
  if (axis == "L") return static_cast<double>(p.seq_len);
  return p.Compression(measured);
}

absl::StatusOr<ScalingLawFit> FitOn(const std::vector<const ResultPoint*>& pts,
                                    const std::string& phase, const ScalingLawOptions& options) {
  ScalingLawFit fit;
  fit.phase = phase;
  std::set<std::string> tasks;
  std::set<double> ns, ls, cs;
  for (const ResultPoint* p : pts) {
    tasks.insert(p->task);
    ns.insert(p->Params());
    ls.insert(static_cast<double>(p->seq_len));
    cs.insert(p->Compression(options.prefer_measured_compression));
  }
  fit.tasks.assign(tasks.begin(), tasks.end());
  fit.names.push_back("eps");
  for (size_t t = 1; t < fit.tasks.size(); ++t) {
    fit.names.push_back(absl::StrCat("delta[", fit.tasks[t], "]"));
  }
  const bool use_n = ns.size() > 1, use_l = ls.size() > 1, use_c = cs.size() > 1;
  if (use_n)
    fit.names.push_back("a_lnN");
  else
    fit.dropped.push_back("a_lnN");
  if (use_l)
    fit.names.push_back("b_lnL");
  else
    fit.dropped.push_back("b_lnL");
  if (use_c)
    fit.names.push_back("c_lnC");
  else
    fit.dropped.push_back("c_lnC");
  const Eigen::Index rows = static_cast<Eigen::Index>(pts.size());
  const Eigen::Index cols = static_cast<Eigen::Index>(fit.names.size());
  if (rows <= cols) {
    return absl::InvalidArgumentError(absl::StrCat("scaling law for phase '", phase, "': ", rows,
                                                   " points for ", cols, " coefficients"));
  }
  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(rows, cols);
  Eigen::VectorXd y(rows), n(rows);
  for (Eigen::Index i = 0; i < rows; ++i) {
    const ResultPoint& p = *pts[static_cast<size_t>(i)];
    Eigen::Index col = 0;
    x(i, col++) = 1.0;
    for (size_t t = 1; t < fit.tasks.size(); ++t, ++col) x(i, col) = p.task == fit.tasks[t];
    if (use_n) x(i, col++) = std::log(p.Params());
    if (use_l) x(i, col++) = std::log(static_cast<double>(p.seq_len));
    if (use_c) x(i, col++) = std::log(p.Compression(options.prefer_measured_compression));
    y[i] = p.MeanScore();
    n[i] = static_cast<double>(p.samples.size());
  }
  absl::StatusOr<GlmFit> glm = FitBinomialGlm(x, y, n);
  if (!glm.ok()) {
    return absl::Status(glm.status().code(), absl::StrCat("scaling law for phase '", phase,
                                                          "': ", glm.status().message()));
  }
  fit.coefficients.assign(glm->coefficients.data(), glm->coefficients.data() + cols);
  fit.standard_errors.assign(glm->standard_errors.data(), glm->standard_errors.data() + cols);
  fit.deviance = glm->deviance;
  fit.iterations = glm->iterations;
  fit.n_points = static_cast<int>(rows);
  return fit;
}
}  // namespace

double ScalingLawFit::Coefficient(const std::string& name) const {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return coefficients[i];
  }
  return kNaN;
}

double ScalingLawFit::Predict(const ResultPoint& p, const ScalingLawOptions& options) const {
  auto task = std::find(tasks.begin(), tasks.end(), p.task);
  if (task == tasks.end()) return kNaN;
  double eta = Coefficient("eps");
  if (task != tasks.begin()) eta += Coefficient(absl::StrCat("delta[", p.task, "]"));
  auto term = [&](const char* name, double value) {
    const double c = Coefficient(name);
    if (!std::isnan(c)) eta += c * std::log(value);
  };
  term("a_lnN", p.Params());
  term("b_lnL", static_cast<double>(p.seq_len));
  term("c_lnC", p.Compression(options.prefer_measured_compression));
  return Sigmoid(eta);
}

absl::StatusOr<ScalingLawFit> FitScalingLaw(const std::vector<ResultPoint>& points,
                                            const std::string& phase,
                                            const ScalingLawOptions& options) {
  return FitOn(PhasePoints(points, phase), phase, options);
}

std::vector<HoldoutValidation> ValidateScalingLaw(const std::vector<ResultPoint>& points,
                                                  const std::string& phase,
                                                  const ScalingLawOptions& options) {
  const std::vector<const ResultPoint*> pts = PhasePoints(points, phase);
  std::vector<HoldoutValidation> out;
  for (const std::string axis : {"N", "L", "C"}) {
    HoldoutValidation v;
    v.axis = axis;
    double max_value = -std::numeric_limits<double>::infinity();
    for (const ResultPoint* p : pts) {
      max_value = std::max(max_value, AxisValue(*p, axis, options.prefer_measured_compression));
    }
    v.held_value = max_value;
    std::vector<const ResultPoint*> train, test;
    for (const ResultPoint* p : pts) {
      (AxisValue(*p, axis, options.prefer_measured_compression) == max_value ? test : train)
          .push_back(p);
    }
    v.n_train = static_cast<int>(train.size());
    if (train.empty()) {
      v.error = absl::StrCat("every point has the same ", axis, ": nothing to hold out");
      out.push_back(v);
      continue;
    }
    absl::StatusOr<ScalingLawFit> fit = FitOn(train, phase, options);
    if (!fit.ok()) {
      v.error = std::string(fit.status().message());
      out.push_back(v);
      continue;
    }
    for (const ResultPoint* p : test) {
      const double pred = fit->Predict(*p, options);
      if (std::isnan(pred)) continue;
      v.observed.push_back(p->MeanScore());
      v.predicted.push_back(pred);
    }
    v.n_test = static_cast<int>(v.observed.size());
    if (v.n_test < 2) {
      v.error = "fewer than 2 held-out points";
      out.push_back(v);
      continue;
    }
    double mean = 0.0;
    for (double o : v.observed) mean += o;
    mean /= v.n_test;
    double ss_res = 0, ss_tot = 0, abs_err = 0;
    for (int i = 0; i < v.n_test; ++i) {
      ss_res += (v.observed[i] - v.predicted[i]) * (v.observed[i] - v.predicted[i]);
      ss_tot += (v.observed[i] - mean) * (v.observed[i] - mean);
      abs_err += std::fabs(v.observed[i] - v.predicted[i]);
    }
    v.r2 = ss_tot > 0 ? 1.0 - ss_res / ss_tot : kNaN;
    v.mae = abs_err / v.n_test;
    v.spearman = SpearmanRho(v.observed, v.predicted);
    out.push_back(v);
  }
  return out;
}

}  // namespace sf::analysis
