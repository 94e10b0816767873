// `sfctl analyze` and the end of `sfctl run`: load a sweep's results, run the analysis,
// write the HTML report and print its summary.
#ifndef SF_CLI_ANALYZE_H_
#define SF_CLI_ANALYZE_H_

#include <string>

#include "cli/analyze_loader.h"
#include "cli/command.h"

namespace sf::cli {

// The database `sfctl run` writes unless told otherwise; `sfctl analyze` reads it by default.
inline constexpr char kDefaultRunDatabase[] = "sfctl-run.db";

struct AnalyzeOptions {
  std::string out_dir;     // "" = DefaultReportDir(...)
  double alpha = 0.05;     // preserved-compression significance level
  std::string test = "t";  // paired one-sided test: "t" or "wilcoxon"
  bool plots = true;       // false: tables, data and gnuplot scripts only
  bool json = false;       // print a JSON summary instead of text
  std::string gnuplot = "gnuplot";
  // sfctl run: when gnuplot cannot be run, write the report without plots and say so
  // instead of failing.
  bool plots_optional = false;
};

// `<db folder>/<db stem>-report/sweep-<id>` for a database file; `sfctl-report/sweep-<id>`
// for a coordinator (db_path empty).
std::string DefaultReportDir(const std::string& db_path, int64_t sweep_id);

// Loads sweep `id_or_name`, analyses it, writes the report and prints the summary and
// the path of index.html. Returns the exit code (errors printed through ReportStatus):
// 2 for an unknown sweep, a sweep without finished jobs, bad options or gnuplot missing
// (the message says to install gnuplot-nox or use --no-plots); 1 when a plot fails.
int AnalyzeSweep(ResultsSource& source, const std::string& id_or_name, const std::string& db_path,
                 const AnalyzeOptions& options, Io& io);

}  // namespace sf::cli

#endif  // SF_CLI_ANALYZE_H_
