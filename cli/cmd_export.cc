// sfctl export: results or per-sample rows as CSV or JSON, to stdout or a file.
#include <fstream>

#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/sweep_ops.h"

namespace sf::cli {

void AddExportCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    std::string what = "results";
    std::string format = "csv";
    std::string output;
    ResultFilters filters;
    RemoteFlags remote;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Export job results (with the result filters) or every stored sample (score, "
      "prediction, target, tokens, measured density) as CSV or JSON");
  cmd->add_option("--what", flags->what, "results or samples")
      ->capture_default_str()
      ->check(CLI::IsMember({"results", "samples"}));
  cmd->add_option("--format", flags->format, "csv or json")
      ->capture_default_str()
      ->check(CLI::IsMember({"csv", "json"}));
  cmd->add_option("-o,--output", flags->output, "file to write (default: stdout)");
  AddResultFilterFlags(cmd, &flags->filters);
  AddRemoteFlags(cmd, &flags->remote);
  cmd->callback([&io, exit_code, flags] {
    absl::StatusOr<Format> format = ParseFormat(flags->format);
    auto remote = Remote::Connect(flags->remote);
    if (!format.ok() || !remote.ok()) {
      *exit_code = ReportStatus(!format.ok() ? format.status() : remote.status(), io);
      return;
    }
    absl::StatusOr<Table> table;
    bool truncated = false;
    if (flags->what == "results") {
      table = FetchResults(**remote, flags->filters);
    } else {
      std::string where;
      if (!flags->filters.sweep.empty()) {
        absl::StatusOr<v1::Sweep> sweep = (*remote)->FindSweep(flags->filters.sweep);
        if (!sweep.ok()) {
          *exit_code = ReportStatus(sweep.status(), io);
          return;
        }
        where = absl::StrCat(" WHERE j.id IN (SELECT job_id FROM sweep_jobs WHERE sweep_id = ",
                             sweep->id(), ")");
      }
      table = RunQuery(
          **remote,
          absl::StrCat("SELECT j.key AS job_key, j.model_name AS model, j.sequence_length AS "
                       "length, j.prefill_method AS prefill, j.prefill_compression, "
                       "j.decode_method AS decode, j.decode_compression, j.task, j.seed, "
                       "s.idx AS sample, s.score, s.prediction, s.target, s.input_tokens, "
                       "s.output_tokens, s.measured_density, s.wall_seconds "
                       "FROM samples s JOIN jobs j ON j.id = s.job_id",
                       where, " ORDER BY j.id, s.idx"),
          0, 0, &truncated);
    }
    if (!table.ok()) {
      *exit_code = ReportStatus(table.status(), io);
      return;
    }
    if (flags->output.empty()) {
      PrintTable(*table, *format, io.out);
    } else {
      std::ofstream file(flags->output);
      PrintTable(*table, *format, file);
      file.close();
      if (!file) {
        *exit_code = ReportStatus(
            absl::UnavailableError(absl::StrCat("cannot write ", flags->output)), io);
        return;
      }
      io.err << "wrote " << table->rows.size() << " rows to " << flags->output << "\n";
    }
    if (truncated) io.err << "sfctl: export truncated at the server's row limit\n";
    *exit_code = kExitOk;
  });
}

}  // namespace sf::cli
