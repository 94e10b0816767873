// sfctl watch: live progress of one sweep (streamed, resumed after reconnects) or of
// every running sweep.
#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/sweep_ops.h"

namespace sf::cli {
namespace {

int ExitFor(const v1::Sweep& sweep) {
  return sweep.state() == v1::SWEEP_STATE_FINISHED && sweep.counts().failed() == 0 ? kExitOk
                                                                                   : kExitFailure;
}

// Every running sweep, polled once a second until none is left.
absl::Status WatchAll(Remote& remote, ProgressDisplay& display, Io& io, int* worst) {
  std::map<int64_t, v1::Sweep> running;
  bool any = false;
  while (true) {
    grpc::ClientContext context;
    remote.Prepare(&context);
    v1::ListSweepsRequest request;
    v1::ListSweepsResponse response;
    grpc::Status status = remote.stub().ListSweeps(&context, request, &response);
    if (!status.ok()) return remote.Error(status, "ListSweeps");
    std::map<int64_t, v1::Sweep> now;
    for (const v1::Sweep& s : response.sweeps()) {
      if (s.state() != v1::SWEEP_STATE_RUNNING) continue;
      now[s.id()] = s;
      display.Update(s);
    }
    for (const auto& [id, s] : running) {
      if (now.contains(id)) continue;
      absl::StatusOr<v1::Sweep> final_state = remote.FindSweep(absl::StrCat(id));
      if (final_state.ok()) {
        display.Update(*final_state);
        *worst = std::max(*worst, ExitFor(*final_state));
      }
    }
    any |= !now.empty();
    running = std::move(now);
    if (running.empty()) {
      if (!any) io.out << "no running sweep\n";
      return absl::OkStatus();
    }
    RealClock().SleepFor(absl::Seconds(1));
  }
}

}  // namespace

void AddWatchCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    std::string sweep;
    RemoteFlags remote;
    double reconnect_s = 300;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "watch",
      "Show live progress until the sweep finishes: a bar per sweep with done/running/"
      "failed/queued jobs, samples/s and ETA (one plain line per change when stdout is not "
      "a terminal). Survives coordinator restarts. Exit 0 when every job is done, 1 when "
      "some failed or the sweep was cancelled");
  cmd->add_option("sweep", flags->sweep, "sweep id or name (default: every running sweep)");
  cmd->add_option("--reconnect-limit", flags->reconnect_s,
                  "give up after the coordinator is unreachable this many seconds")
      ->capture_default_str();
  AddRemoteFlags(cmd, &flags->remote);
  cmd->callback([&io, exit_code, flags] {
    auto remote = Remote::Connect(flags->remote);
    if (!remote.ok()) {
      *exit_code = ReportStatus(remote.status(), io);
      return;
    }
    ProgressDisplay display(io.out, IsTerminal(io.out), &RealClock());
    if (flags->sweep.empty()) {
      int worst = kExitOk;
      absl::Status s = WatchAll(**remote, display, io, &worst);
      *exit_code = s.ok() ? worst : ReportStatus(s, io);
      return;
    }
    absl::StatusOr<v1::Sweep> sweep = (*remote)->FindSweep(flags->sweep);
    if (!sweep.ok()) {
      *exit_code = ReportStatus(sweep.status(), io);
      return;
    }
    WatchOptions options;
    options.reconnect_limit = absl::Seconds(flags->reconnect_s);
    absl::StatusOr<v1::Sweep> final_state =
        WatchUntilDone(**remote, sweep->id(), display, options, &RealClock());
    *exit_code = final_state.ok() ? ExitFor(*final_state) : ReportStatus(final_state.status(), io);
  });
}

}  // namespace sf::cli
