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
    ReadFlags read;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Export job results or every stored sample of the matching jobs (score, prediction, "
      "target, tokens, measured density) as CSV or JSON, from a coordinator or a results "
      "file (--db); the result filters apply to both (--limit counts rows). Loading into "
      "pandas or DuckDB: docs/cli.md");
  cmd->add_option("--what", flags->what, "results or samples")
      ->capture_default_str()
      ->check(CLI::IsMember({"results", "samples"}));
  AddFormatFlag(cmd, &flags->format, {"csv", "json"});
  cmd->add_option("-o,--output", flags->output, "file to write (default: stdout)");
  AddResultFilterFlags(cmd, &flags->filters);
  AddReadFlags(cmd, &flags->read);
  cmd->callback([&io, exit_code, flags] {
    absl::StatusOr<Format> format = ParseFormat(flags->format);
    absl::StatusOr<std::unique_ptr<ReadSource>> source = OpenReadSource(flags->read);
    if (!format.ok() || !source.ok()) {
      *exit_code = ReportStatus(!format.ok() ? format.status() : source.status(), io);
      return;
    }
    absl::StatusOr<Table> table = flags->what == "results" ? FetchResults(**source, flags->filters)
                                                           : FetchSamples(**source, flags->filters);
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
        *exit_code =
            ReportStatus(absl::UnavailableError(absl::StrCat("cannot write ", flags->output)), io);
        return;
      }
      io.err << "wrote " << table->rows.size() << " rows to " << flags->output << "\n";
    }
    *exit_code = kExitOk;
  });
}

}  // namespace sf::cli
