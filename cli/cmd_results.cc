// sfctl results: job results filtered on every grid axis, as a table, CSV or JSON.
#include "cli/command.h"
#include "cli/sweep_ops.h"

namespace sf::cli {

void AddResultsCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    ResultFilters filters;
    std::string format = "table";
    RemoteFlags remote;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "results",
      "Show job results (mean score, its standard error, n, measured compression) filtered "
      "on any grid axis; repeat a filter flag to allow several values. Example: sfctl "
      "results --model qwen2.5-7b --length 32768 --method quest --format csv");
  AddResultFilterFlags(cmd, &flags->filters);
  cmd->add_option("--format", flags->format, "table, csv or json")->capture_default_str();
  AddRemoteFlags(cmd, &flags->remote);
  cmd->callback([&io, exit_code, flags] {
    absl::StatusOr<Format> format = ParseFormat(flags->format);
    auto remote = Remote::Connect(flags->remote);
    if (!format.ok() || !remote.ok()) {
      *exit_code = ReportStatus(!format.ok() ? format.status() : remote.status(), io);
      return;
    }
    absl::StatusOr<Table> table = FetchResults(**remote, flags->filters);
    if (!table.ok()) {
      *exit_code = ReportStatus(table.status(), io);
      return;
    }
    PrintTable(*table, *format, io.out);
    if (*format == Format::kTable && table->rows.empty()) io.out << "(no matching results)\n";
    *exit_code = kExitOk;
  });
}

}  // namespace sf::cli
