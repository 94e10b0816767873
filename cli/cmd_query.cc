// sfctl query: read-only SQL against the coordinator's database.
#include "cli/command.h"
#include "cli/sweep_ops.h"

namespace sf::cli {

void AddQueryCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    std::string sql;
    std::string format = "table";
    int64_t max_rows = 0;
    int64_t timeout_ms = 0;
    RemoteFlags remote;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "query",
      "Run a read-only SQL query on the coordinator's database (tables: sweeps, jobs, "
      "sweep_jobs, samples, results, workers, events; writes and functions outside the "
      "allowed list, e.g. printf or randomblob, are refused). The server stops a query at "
      "10 s, 256 MiB of memory or a 16 MiB value (exit 4). Example: sfctl "
      "query 'SELECT task, AVG(mean) FROM results JOIN jobs ON jobs.id = results.job_id "
      "GROUP BY task'");
  cmd->add_option("sql", flags->sql, "the SELECT statement")->required();
  cmd->add_option("--format", flags->format, "table, csv or json")->capture_default_str();
  cmd->add_option("--max-rows", flags->max_rows, "row limit (0 = the server's, 100,000)");
  cmd->add_option("--query-timeout-ms", flags->timeout_ms,
                  "time limit on the server (0 = the server's, 10 s)");
  AddRemoteFlags(cmd, &flags->remote);
  cmd->callback([&io, exit_code, flags] {
    absl::StatusOr<Format> format = ParseFormat(flags->format);
    auto remote = Remote::Connect(flags->remote);
    if (!format.ok() || !remote.ok()) {
      *exit_code = ReportStatus(!format.ok() ? format.status() : remote.status(), io);
      return;
    }
    bool truncated = false;
    absl::StatusOr<Table> table =
        RunQuery(**remote, flags->sql, flags->max_rows, flags->timeout_ms, &truncated);
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
