// sfctl results: job results filtered on every grid axis, as a table, CSV or JSON.
#include "cli/command.h"
#include "cli/sweep_ops.h"

namespace sf::cli {

void AddResultsCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    ResultFilters filters;
    std::string format = "table";
    bool wide = false;
    ReadFlags read;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "results",
      "Show job results (mean score, its standard error, n, measured compression) filtered "
      "on any grid axis; repeat a filter flag to allow several values. Reads a coordinator "
      "or, with --db, a results file with no coordinator. Example: sfctl results --db "
      "sfctl-run.db --method quest --length 8192");
  AddResultFilterFlags(cmd, &flags->filters);
  AddFormatFlag(cmd, &flags->format);
  cmd->add_flag("--wide", flags->wide,
                "every column (prefill and decode apart, metric, worker) in the table; CSV "
                "and JSON always have them");
  AddReadFlags(cmd, &flags->read);
  cmd->callback([&io, exit_code, flags] {
    absl::StatusOr<Format> format = ParseFormat(flags->format);
    if (!format.ok()) {
      *exit_code = ReportStatus(format.status(), io);
      return;
    }
    absl::StatusOr<std::unique_ptr<ReadSource>> source = OpenReadSource(flags->read);
    if (!source.ok()) {
      *exit_code = ReportStatus(source.status(), io);
      return;
    }
    absl::StatusOr<std::vector<v1::ResultRow>> rows = FetchResultRows(**source, flags->filters);
    if (!rows.ok()) {
      *exit_code = ReportStatus(rows.status(), io);
      return;
    }
    PrintResults(*rows, *format, flags->wide, io.out);
    *exit_code = kExitOk;
  });
}

}  // namespace sf::cli
