// The report's interactive page (explore.html): every scored point as data with a small
// built-in SVG plotter, so that a researcher can hover a point to read its model, method,
// compression, score and n, toggle methods and models, and pick task, length, phase and
// x axis (compression, FLOPs, or measured seconds when the sweep was timed). Self-contained: no
// script, style or font is fetched, so it works offline and can be mailed as one file.
#ifndef SF_ANALYSIS_EXPLORER_H_
#define SF_ANALYSIS_EXPLORER_H_

#include <string>

#include "absl/status/status.h"
#include "analysis/report.h"

namespace sf::analysis {

// The page's data: one JSON object per scored point (model, params, task, length,
// method, phase, nominal and measured compression, mean, stderr, n, FLOPs per sample of
// each phase, and measured seconds per sample of each phase when the point was timed on
// `time_device`, else 0), the caveat and `time_device` ("" = no seconds axis; times
// compare only between points of one device, as in the report's iso-time section).
std::string ExplorerDataJson(const AnalysisInput& input, const ReportOptions& options,
                             const std::string& time_device);

// Writes out_dir/explore.html. Internal on a write error.
absl::Status WriteExplorer(const AnalysisInput& input, const ReportOptions& options,
                           const std::string& time_device, const std::string& out_dir);

}  // namespace sf::analysis

#endif  // SF_ANALYSIS_EXPLORER_H_
