// sfctl analyze: the study's findings for one sweep, from the results database.
#include "cli/analyze.h"
#include "cli/command.h"
#include "cli/remote.h"

namespace sf::cli {

void AddAnalyzeCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    std::string sweep;
    std::string db = kDefaultRunDatabase;
    RemoteFlags remote;
    AnalyzeOptions analyze;
    bool no_plots = false;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "analyze",
      "Analyse a sweep's results: isoFLOPS curves and their Pareto frontier, critical "
      "lengths, preserved compression (paired one-sided tests against dense on the same "
      "samples), the logistic scaling law with held-out validation. Writes an HTML report "
      "with PNG/SVG figures (gnuplot) and CSV tables, and prints a summary. Reads the "
      "database file of `sfctl run` (--db, opened read-only) or a coordinator "
      "(--coordinator given explicitly, through its read-only Query). Partial sweeps work: missing "
      "points "
      "are listed, never counted as zero");
  cmd->add_option("--sweep", flags->sweep, "sweep id or name")->required();
  auto* db = cmd->add_option("--db", flags->db, "results database file (read-only)")
                 ->capture_default_str();
  AddRemoteFlags(cmd, &flags->remote);
  cmd->get_option("--coordinator")->excludes(db);
  cmd->add_option("--out", flags->analyze.out_dir,
                  "report folder (default: <db stem>-report/sweep-<id> beside the database; "
                  "sfctl-report/sweep-<id> with --coordinator)");
  cmd->add_option("--alpha", flags->analyze.alpha,
                  "significance level of the preserved-compression tests")
      ->capture_default_str();
  cmd->add_option("--test", flags->analyze.test,
                  "paired one-sided test against dense: t (paired t-test) or wilcoxon "
                  "(signed-rank)")
      ->capture_default_str();
  cmd->add_flag("--no-plots", flags->no_plots,
                "write tables, data and gnuplot scripts but no figures (no gnuplot needed)");
  cmd->add_flag("--json", flags->analyze.json, "print the summary as JSON");
  cmd->add_option("--gnuplot", flags->analyze.gnuplot, "gnuplot program")->capture_default_str();
  cmd->callback([&io, exit_code, flags, cmd] {
    flags->analyze.plots = !flags->no_plots;
    if (cmd->count("--coordinator") > 0) {
      auto remote = Remote::Connect(flags->remote);
      if (!remote.ok()) {
        *exit_code = ReportStatus(remote.status(), io);
        return;
      }
      std::unique_ptr<ResultsSource> source = CoordinatorSource(remote->get());
      *exit_code = AnalyzeSweep(*source, flags->sweep, "", flags->analyze, io);
      return;
    }
    absl::StatusOr<std::unique_ptr<ResultsSource>> source = DatabaseSource(flags->db);
    if (!source.ok()) {
      *exit_code = ReportStatus(source.status(), io);
      return;
    }
    *exit_code = AnalyzeSweep(**source, flags->sweep, flags->db, flags->analyze, io);
  });
}

}  // namespace sf::cli
