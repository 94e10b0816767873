// The analysis entry points: Analyze() computes every finding from in-memory results
// (isoFLOPS and iso-time frontiers, critical lengths, preserved compression, scaling-law
// fits);
// WriteReport() also draws the plots with gnuplot and writes one HTML page.
#ifndef SF_ANALYSIS_REPORT_H_
#define SF_ANALYSIS_REPORT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "analysis/isoflops.h"
#include "analysis/isotime.h"
#include "analysis/preserved.h"
#include "analysis/result_point.h"
#include "analysis/scaling_law.h"

namespace sf::analysis {

struct ReportOptions {
  std::string title = "Sparse Frontier analysis";
  PreservedOptions preserved;  // test and alpha for preserved compression
  FlopsOptions flops;          // measured vs nominal compression, estimation
  ScalingLawOptions scaling;
  bool render_plots = true;         // false: data files and scripts only
  std::string gnuplot = "gnuplot";  // program name or path
};

struct PhaseFit {
  std::string phase;
  std::optional<ScalingLawFit> fit;
  std::string error;  // why there is no fit
  std::vector<HoldoutValidation> validation;
};

// A grid cell that the sweep's own axes imply but that has no scored samples.
struct MissingPoint {
  std::string model;
  std::string task;
  int64_t seq_len = 0;
  std::string method;
  std::string phase;  // "" for dense
  double compression = 1.0;
};

struct AnalysisResults {
  std::vector<IsoFlopsCurve> curves;
  std::vector<CriticalLength> critical;
  std::vector<PreservedCompression> preserved;
  std::vector<PhaseFit> fits;  // one per phase with sparse points
  std::vector<MissingPoint> missing;
  std::vector<std::string> warnings;
  // Wall clock (isotime.h), from the points timed on one device (time_device; "" when no
  // point was timed, and the rest is empty): the frontiers on measured seconds, their
  // critical lengths, measured against FLOPs speed-ups, and the panels whose isoFLOPS and
  // iso-time frontiers disagree.
  std::string time_device;
  std::vector<IsoFlopsCurve> time_curves;
  std::vector<CriticalLength> time_critical;
  std::vector<SpeedupRow> speedups;
  std::vector<FrontierDisagreement> disagreements;
};

// Computes every finding. Partial sweeps are fine: what cannot be computed is listed
// in `missing`, `warnings` or a fit's `error`, never filled with zeros.
// Returns InvalidArgument for points without a model, task, method, positive length
// or architecture (shape, or params with recorded FLOPs), a sparse point
// without phase "prefill"/"decode" or with compression < 1, or invalid options
// (alpha outside (0, 1)).
absl::StatusOr<AnalysisResults> Analyze(const AnalysisInput& input, const ReportOptions& options);

// A plain-text summary for a terminal (sfctl analyze): warnings, the scaling-law
// coefficients and held-out validation per phase, the task-averaged critical lengths,
// and the preserved compression averaged per (method, length) over models and tasks.
std::string FormatSummary(const AnalysisResults& results, const ReportOptions& options);

// Analyze()s `input` and writes into `out_dir` (created if needed): index.html, the
// tables as CSV, and per plot a gnuplot script, its data, a PNG and an SVG. Returns
// FailedPrecondition when gnuplot cannot be run (install gnuplot-nox, or set
// render_plots = false), Internal when a script fails (see plots/gnuplot.log).
absl::Status WriteReport(const AnalysisInput& input, const ReportOptions& options,
                         const std::string& out_dir);
// The same from results already computed by Analyze(input, options).
absl::Status WriteReport(const AnalysisInput& input, const AnalysisResults& results,
                         const ReportOptions& options, const std::string& out_dir);

}  // namespace sf::analysis

#endif  // SF_ANALYSIS_REPORT_H_
