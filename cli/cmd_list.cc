// sfctl list: every sweep with its state and counts.
#include "absl/time/time.h"
#include "cli/command.h"
#include "cli/sweep_ops.h"

namespace sf::cli {

void AddListCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    int limit = 100;
    std::string format = "table";
    ReadFlags read;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "list",
      "List sweeps (running and finished), newest first, from a coordinator or a results "
      "file (--db)");
  cmd->add_option("--limit", flags->limit, "at most this many sweeps")->capture_default_str();
  AddFormatFlag(cmd, &flags->format);
  AddReadFlags(cmd, &flags->read);
  cmd->callback([&io, exit_code, flags] {
    absl::StatusOr<Format> format = ParseFormat(flags->format);
    absl::StatusOr<std::unique_ptr<ReadSource>> source = OpenReadSource(flags->read);
    if (!format.ok() || !source.ok()) {
      *exit_code = ReportStatus(!format.ok() ? format.status() : source.status(), io);
      return;
    }
    v1::ListSweepsRequest request;
    request.set_limit(flags->limit);
    request.set_include_finished(true);
    absl::StatusOr<v1::ListSweepsResponse> response = (*source)->ListSweeps(request);
    if (!response.ok()) {
      *exit_code = ReportStatus(response.status(), io);
      return;
    }
    Table table;
    table.columns = {"id",     "name",   "state",   "created",   "jobs",        "done",
                     "failed", "queued", "running", "cancelled", "samples_done"};
    for (const v1::Sweep& s : response->sweeps()) {
      const char* state = SweepStateName(s.state());
      const v1::SweepCounts& c = s.counts();
      table.rows.push_back(
          {s.id(), s.name(), std::string(state),
           absl::FormatTime("%Y-%m-%d %H:%M", absl::FromUnixMillis(s.created_unix_ms()),
                            absl::UTCTimeZone()),
           c.total(), c.done(), c.failed(), c.queued(), c.leased(), c.cancelled(),
           c.samples_done()});
    }
    PrintTable(table, *format, io.out);
    *exit_code = kExitOk;
  });
}

}  // namespace sf::cli
