// sfctl analyze: the study's findings for one sweep, from the results database.
#include <cstdlib>

#include "cli/analyze.h"
#include "cli/command.h"
#include "cli/read_source.h"

namespace sf::cli {

void AddAnalyzeCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    std::string sweep;
    ReadFlags read;
    AnalyzeOptions analyze;
    std::string format = "text";
    bool no_plots = false;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "analyze",
      "Analyse a sweep's results: isoFLOPS curves and their Pareto frontier, critical "
      "lengths, preserved compression (paired one-sided tests against dense on the same "
      "samples), the logistic scaling law with held-out validation. Writes an HTML report "
      "with PNG/SVG figures (gnuplot) and CSV tables, and prints a summary. Reads a "
      "database file (--db, opened read-only) or a coordinator (--coordinator or "
      "$SF_COORDINATOR); with neither, the sfctl-run.db of `sfctl run` in this folder. "
      "Partial sweeps work: missing points are listed, never counted as zero");
  cmd->add_option("sweep", flags->sweep, "sweep id or name (or --sweep)");
  cmd->add_option("--sweep", flags->sweep, "sweep id or name");
  AddReadFlags(cmd, &flags->read);
  cmd->add_option("--out", flags->analyze.out_dir,
                  "report folder (default: <db stem>-report/sweep-<id> beside the database; "
                  "sfctl-report/sweep-<id> with a coordinator)");
  cmd->add_option("--alpha", flags->analyze.alpha,
                  "significance level of the preserved-compression tests")
      ->capture_default_str();
  cmd->add_option("--test", flags->analyze.test,
                  "paired one-sided test against dense: t (paired t-test) or wilcoxon "
                  "(signed-rank)")
      ->capture_default_str();
  cmd->add_flag("--no-plots", flags->no_plots,
                "write tables, data and gnuplot scripts but no figures (no gnuplot needed)");
  AddFormatFlag(cmd, &flags->format, {"text", "json"});
  cmd->add_flag("--json", flags->analyze.json, "the same as --format json");
  cmd->add_option("--gnuplot", flags->analyze.gnuplot, "gnuplot program")->capture_default_str();
  cmd->callback([&io, exit_code, flags, cmd] {
    if (flags->sweep.empty()) {
      *exit_code = ReportStatus(
          absl::InvalidArgumentError("name the sweep: sfctl analyze SWEEP (id or name; sfctl "
                                     "list --db FILE shows them)"),
          io);
      return;
    }
    flags->analyze.plots = !flags->no_plots;
    flags->analyze.json |= flags->format == "json";
    // Like every other command, a coordinator named by flag or $SF_COORDINATOR is used;
    // without one (and without --db), the database `sfctl run` writes here.
    const char* env = std::getenv("SF_COORDINATOR");
    const bool coordinator =
        cmd->count("--coordinator") > 0 || (flags->read.db.empty() && env && *env);
    ReadFlags read = flags->read;
    if (!coordinator && read.db.empty()) read.db = kDefaultRunDatabase;
    absl::StatusOr<std::unique_ptr<ReadSource>> source = OpenReadSource(read);
    if (!source.ok()) {
      *exit_code = ReportStatus(source.status(), io);
      return;
    }
    *exit_code = AnalyzeSweep(**source, flags->sweep, read.db, flags->analyze, io);
  });
}

}  // namespace sf::cli
