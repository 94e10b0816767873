// sfctl list: every sweep with its state and counts.
#include "absl/time/time.h"
#include "cli/command.h"
#include "cli/sweep_ops.h"

namespace sf::cli {

void AddListCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    int limit = 100;
    std::string format = "table";
    RemoteFlags remote;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("list", "List sweeps (running and finished), newest first");
  cmd->add_option("--limit", flags->limit, "at most this many sweeps")->capture_default_str();
  cmd->add_option("--format", flags->format, "table, csv or json")->capture_default_str();
  AddRemoteFlags(cmd, &flags->remote);
  cmd->callback([&io, exit_code, flags] {
    absl::StatusOr<Format> format = ParseFormat(flags->format);
    auto remote = Remote::Connect(flags->remote);
    if (!format.ok() || !remote.ok()) {
      *exit_code = ReportStatus(!format.ok() ? format.status() : remote.status(), io);
      return;
    }
    grpc::ClientContext context;
    (*remote)->Prepare(&context);
    v1::ListSweepsRequest request;
    request.set_limit(flags->limit);
    request.set_include_finished(true);
    v1::ListSweepsResponse response;
    grpc::Status status = (*remote)->stub().ListSweeps(&context, request, &response);
    if (!status.ok()) {
      *exit_code = ReportStatus((*remote)->Error(status, "ListSweeps"), io);
      return;
    }
    Table table;
    table.columns = {"id",     "name",   "state",   "created",   "jobs",        "done",
                     "failed", "queued", "running", "cancelled", "samples_done"};
    for (const v1::Sweep& s : response.sweeps()) {
      const char* state = s.state() == v1::SWEEP_STATE_FINISHED    ? "finished"
                          : s.state() == v1::SWEEP_STATE_CANCELLED ? "cancelled"
                                                                   : "running";
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
