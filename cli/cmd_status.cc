// sfctl status: one sweep's counts, or a summary line per running sweep.
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "cli/sweep_ops.h"

namespace sf::cli {

void AddStatusCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    std::string sweep;
    RemoteFlags remote;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd =
      app.add_subcommand("status",
                         "Show a sweep's job counts (queued, running, done, failed, cancelled, "
                         "preempted, samples), or one line per running sweep");
  cmd->add_option("sweep", flags->sweep, "sweep id or name (default: every running sweep)");
  AddRemoteFlags(cmd, &flags->remote);
  cmd->callback([&io, exit_code, flags] {
    auto remote = Remote::Connect(flags->remote);
    if (!remote.ok()) {
      *exit_code = ReportStatus(remote.status(), io);
      return;
    }
    if (flags->sweep.empty()) {
      grpc::ClientContext context;
      (*remote)->Prepare(&context);
      v1::ListSweepsResponse response;
      grpc::Status status =
          (*remote)->stub().ListSweeps(&context, v1::ListSweepsRequest(), &response);
      if (!status.ok()) {
        *exit_code = ReportStatus((*remote)->Error(status, "ListSweeps"), io);
        return;
      }
      int shown = 0;
      for (const v1::Sweep& s : response.sweeps()) {
        if (s.state() != v1::SWEEP_STATE_RUNNING) continue;
        io.out << s.id() << "  " << FormatProgressLine(s, 0, 20) << "\n";
        ++shown;
      }
      if (shown == 0) io.out << "no running sweep ('sfctl list' shows finished ones)\n";
      *exit_code = kExitOk;
      return;
    }
    absl::StatusOr<v1::Sweep> sweep = (*remote)->FindSweep(flags->sweep);
    if (!sweep.ok()) {
      *exit_code = ReportStatus(sweep.status(), io);
      return;
    }
    const v1::SweepCounts& c = sweep->counts();
    const char* state = sweep->state() == v1::SWEEP_STATE_FINISHED    ? "finished"
                        : sweep->state() == v1::SWEEP_STATE_CANCELLED ? "cancelled"
                                                                      : "running";
    io.out << "sweep " << sweep->id() << " '" << sweep->name() << "': " << state << " (priority "
           << sweep->priority() << ", created "
           << absl::FormatTime("%Y-%m-%d %H:%M:%S UTC",
                               absl::FromUnixMillis(sweep->created_unix_ms()), absl::UTCTimeZone())
           << ")\n"
           << absl::StrFormat("  jobs     %8d total\n", c.total())
           << absl::StrFormat("  queued   %8d\n  running  %8d\n  done     %8d\n", c.queued(),
                              c.leased(), c.done())
           << absl::StrFormat("  failed   %8d\n  cancelled%8d\n  preempted%8d (not failures)\n",
                              c.failed(), c.cancelled(), c.preemptions())
           << absl::StrFormat("  samples  %8d / %d\n", c.samples_done(), c.samples_total());
    *exit_code = kExitOk;
  });
}

}  // namespace sf::cli
