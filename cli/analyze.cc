#include "cli/analyze.h"

#include <filesystem>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "analysis/report.h"
#include "analysis/stats.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace sf::cli {
namespace {

namespace fs = std::filesystem;

// NaN and infinities are not JSON numbers: null.
nlohmann::json Number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

nlohmann::json ToJson(const LoadedSweep& sweep, const analysis::AnalysisResults& r,
                      const std::string& index_html, bool plots) {
  nlohmann::json j;
  j["sweep_id"] = sweep.sweep_id;
  j["sweep_name"] = sweep.sweep_name;
  j["jobs_total"] = sweep.jobs_total;
  j["jobs_done"] = sweep.jobs_done;
  j["points"] = sweep.input.points.size();
  j["report"] = index_html;
  j["plots"] = plots;
  j["caveat"] = sweep.input.caveat;
  j["random_weight_models"] = sweep.random_weight_models;
  std::vector<std::string> warnings = sweep.warnings;
  warnings.insert(warnings.end(), r.warnings.begin(), r.warnings.end());
  j["warnings"] = warnings;
  j["missing"] = nlohmann::json::array();
  for (const auto& m : r.missing) {
    j["missing"].push_back({{"model", m.model},
                            {"task", m.task},
                            {"seq_len", m.seq_len},
                            {"method", m.method},
                            {"phase", m.phase},
                            {"compression", m.compression}});
  }
  j["preserved"] = nlohmann::json::array();
  for (const auto& pc : r.preserved) {
    j["preserved"].push_back({{"model", pc.model},
                              {"task", pc.task},
                              {"seq_len", pc.seq_len},
                              {"method", pc.method},
                              {"phase", pc.phase},
                              {"preserved_compression", Number(pc.preserved)},
                              {"non_monotone", pc.non_monotone}});
  }
  j["fits"] = nlohmann::json::array();
  for (const auto& pf : r.fits) {
    nlohmann::json f = {{"phase", pf.phase}, {"error", pf.error}};
    if (pf.fit) {
      for (size_t k = 0; k < pf.fit->names.size(); ++k) {
        f["coefficients"][pf.fit->names[k]] = Number(pf.fit->coefficients[k]);
        f["standard_errors"][pf.fit->names[k]] = Number(pf.fit->standard_errors[k]);
      }
      f["not_estimated"] = pf.fit->dropped;
    }
    f["validation"] = nlohmann::json::array();
    for (const auto& v : pf.validation) {
      f["validation"].push_back({{"axis", v.axis},
                                 {"r2", Number(v.r2)},
                                 {"spearman", Number(v.spearman)},
                                 {"mae", Number(v.mae)},
                                 {"error", v.error}});
    }
    j["fits"].push_back(std::move(f));
  }
  j["critical_lengths"] = nlohmann::json::array();
  for (const auto& c : r.critical) {
    j["critical_lengths"].push_back(
        {{"phase", c.phase},
         {"task", c.task},
         {"small_model", c.small_model},
         {"large_model", c.large_model},
         {"critical_length", c.critical_len ? Number(*c.critical_len) : nlohmann::json(nullptr)},
         {"verdict", c.verdict}});
  }
  return j;
}

}  // namespace

std::string DefaultReportDir(const std::string& db_path, int64_t sweep_id) {
  if (db_path.empty()) return absl::StrCat("sfctl-report/sweep-", sweep_id);
  const fs::path db(db_path);
  return (db.parent_path() / absl::StrCat(db.stem().string(), "-report") /
          absl::StrCat("sweep-", sweep_id))
      .string();
}

int AnalyzeSweep(ResultsSource& source, const std::string& id_or_name, const std::string& db_path,
                 const AnalyzeOptions& options, Io& io) {
  analysis::ReportOptions report;
  absl::StatusOr<analysis::PairedTestKind> test = analysis::ParsePairedTestKind(options.test);
  if (!test.ok()) return ReportStatus(Annotate(test.status(), "--test"), io);
  if (!(options.alpha > 0 && options.alpha < 1)) {
    return ReportStatus(
        absl::InvalidArgumentError(absl::StrCat("--alpha must lie in (0, 1), got ", options.alpha)),
        io);
  }
  report.preserved.test = *test;
  report.preserved.alpha = options.alpha;
  report.render_plots = options.plots;
  report.gnuplot = options.gnuplot;

  absl::StatusOr<LoadedSweep> sweep = LoadSweep(source, id_or_name);
  if (!sweep.ok()) return ReportStatus(sweep.status(), io);
  report.title = absl::StrCat("Sparse Frontier analysis: sweep ", sweep->sweep_id, " '",
                              sweep->sweep_name, "'");
  absl::StatusOr<analysis::AnalysisResults> results = analysis::Analyze(sweep->input, report);
  if (!results.ok()) {
    return ReportStatus(
        Annotate(results.status(), absl::StrCat("analysing sweep ", sweep->sweep_id)), io);
  }
  const std::string out_dir =
      options.out_dir.empty() ? DefaultReportDir(db_path, sweep->sweep_id) : options.out_dir;
  bool plots = options.plots;
  absl::Status written = analysis::WriteReport(sweep->input, *results, report, out_dir);
  std::string plot_note;
  if (absl::IsFailedPrecondition(written) && plots) {
    if (!options.plots_optional) {
      return ReportStatus(
          absl::FailedPreconditionError(absl::StrCat(
              "cannot draw the figures: ", written.message(),
              ". Install gnuplot (apt-get install gnuplot-nox) or pass --no-plots for the "
              "tables without figures")),
          io);
    }
    report.render_plots = false;
    plots = false;
    plot_note = absl::StrCat("note: ", written.message(),
                             "; the report has tables but no figures (apt-get install "
                             "gnuplot-nox, then sfctl analyze)");
    written = analysis::WriteReport(sweep->input, *results, report, out_dir);
  }
  if (!written.ok()) {
    return ReportStatus(Annotate(written, absl::StrCat("writing the report to ", out_dir)), io);
  }
  const std::string index_html = (fs::path(out_dir) / "index.html").string();

  if (options.json) {
    io.out << ToJson(*sweep, *results, index_html, plots).dump(2) << "\n";
    if (!plot_note.empty()) io.err << plot_note << "\n";
    return kExitOk;
  }
  io.out << "analysis of sweep " << sweep->sweep_id << " '" << sweep->sweep_name
         << "': " << sweep->jobs_done << " of " << sweep->jobs_total << " jobs done, "
         << sweep->input.points.size()
         << " points; test against dense: " << analysis::PairedTestName(report.preserved.test)
         << ", alpha " << report.preserved.alpha << "\n";
  if (!sweep->input.caveat.empty()) {
    io.out << "\n*** CAVEAT: " << sweep->input.caveat << " ***\n";
  }
  for (const std::string& w : sweep->warnings) io.out << "warning: " << w << "\n";
  io.out << analysis::FormatSummary(*results, report);
  if (!plot_note.empty()) io.out << plot_note << "\n";
  io.out << "report: " << index_html << "\n";
  return kExitOk;
}

}  // namespace sf::cli
