// sfctl query: read-only SQL against a coordinator's database or a results file.
#include "cli/command.h"
#include "cli/sweep_ops.h"

namespace sf::cli {

void AddQueryCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    std::string sql;
    std::string format = "table";
    int64_t max_rows = 0;
    int64_t timeout_ms = 0;
    ReadFlags read;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "query",
      "Run a read-only SQL query on the coordinator's database, or on a results file with "
      "--db (tables: sweeps, jobs, sweep_jobs, samples, results, workers, events; views with "
      "states by name: job_status, event_log, and the code tables job_states, sweep_states, "
      "event_kinds; docs/coordinator.md describes each). Writes and functions outside the "
      "allowed list, e.g. printf or randomblob, are refused; the server stops a query at "
      "10 s, 256 MiB of memory or a 16 MiB value (exit 4). Example: sfctl query --db "
      "sfctl-run.db \"SELECT key, state, last_error FROM job_status WHERE state = 'failed'\"");
  cmd->add_option("sql", flags->sql, "the SELECT statement")->required();
  AddFormatFlag(cmd, &flags->format);
  cmd->add_option("--max-rows", flags->max_rows, "row limit (0 = the server's, 100,000)");
  cmd->add_option("--query-timeout-ms", flags->timeout_ms,
                  "time limit on the server (0 = the server's, 10 s)");
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
    bool truncated = false;
    absl::StatusOr<Table> table =
        RunQuery(**source, flags->sql, flags->max_rows, flags->timeout_ms, &truncated);
    if (!table.ok()) {
      *exit_code = ReportStatus(table.status(), io);
      return;
    }
    PrintTable(*table, *format, io.out);
    if (truncated) io.err << "sfctl: output truncated at the row limit (--max-rows)\n";
    *exit_code = kExitOk;
  });
}

}  // namespace sf::cli
