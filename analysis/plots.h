// Internal to the report: gnuplot scripts and their data for each figure, and the
// runner that turns them into PNG (pngcairo, else png) and SVG files.
#ifndef SF_ANALYSIS_PLOTS_H_
#define SF_ANALYSIS_PLOTS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "analysis/report.h"

namespace sf::analysis {

struct PlotFile {
  std::string section;  // "isoflops", "isotime", "compression", "preserved", "fit"
  std::string title;
  std::string stem;  // out_dir/<stem>.png and .svg, plots/<stem>.gp
};

// Writes data files and scripts for every figure under `out_dir` (data/, plots/) and
// appends what it wrote to `plots`.
absl::Status WritePlotScripts(const AnalysisInput& input, const AnalysisResults& results,
                              const ReportOptions& options, const std::string& out_dir,
                              std::vector<PlotFile>* plots);

// Runs gnuplot on each plot's script in `out_dir`, output logged to plots/gnuplot.log.
absl::Status RenderPlots(const std::vector<PlotFile>& plots, const std::string& gnuplot,
                         const std::string& out_dir);

// A file-name-safe version of `name` ([A-Za-z0-9._-], others become '_').
std::string SafeName(const std::string& name);

}  // namespace sf::analysis

#endif  // SF_ANALYSIS_PLOTS_H_
