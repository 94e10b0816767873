// sfctl watch: live progress of one sweep (streamed, resumed after reconnects) or of
// every running sweep.
#include <algorithm>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "cli/command.h"
#include "cli/sweep_ops.h"
#include "nlohmann/json.hpp"

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

// One event as a JSON line (--format json). "counts" (the sweep's counts at the time it
// was sent) is on the last event of each batch the coordinator sends, null on the others.
std::string EventJson(const v1::SweepEvent& e) {
  std::string kind = v1::EventKind_Name(e.kind());
  kind = absl::AsciiStrToLower(absl::StripPrefix(kind, "EVENT_KIND_"));
  nlohmann::ordered_json o = {
      {"sequence", e.sequence()}, {"sweep_id", e.sweep_id()}, {"kind", kind},
      {"job_key", e.job_key()},   {"worker", e.worker_id()},  {"message", e.message()},
      {"unix_ms", e.unix_ms()},   {"counts", nullptr}};
  if (e.has_counts()) {
    const v1::SweepCounts& c = e.counts();
    o["counts"] = {{"jobs", c.total()},
                   {"queued", c.queued()},
                   {"running", c.leased()},
                   {"done", c.done()},
                   {"failed", c.failed()},
                   {"cancelled", c.cancelled()},
                   {"samples_done", c.samples_done()},
                   {"samples_total", c.samples_total()}};
  }
  return o.dump();
}

}  // namespace

void AddWatchCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    std::string sweep;
    RemoteFlags remote;
    double reconnect_s = 300;
    std::string format = "text";
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "watch",
      "Show live progress until the sweep finishes: a bar per sweep with done/running/"
      "failed/queued jobs, samples/s and ETA (one plain line per change when stdout is not "
      "a terminal). Survives coordinator restarts. Exit 0 when every job is done, 1 when "
      "some failed or the sweep was cancelled. Failed attempts are printed with their "
      "reason as they happen; --format json prints every event of the sweep, from its first, as "
      "one JSON line instead (also for a sweep already over)");
  cmd->add_option("sweep", flags->sweep, "sweep id or name (default: every running sweep)");
  cmd->add_option("--reconnect-limit", flags->reconnect_s,
                  "give up after the coordinator is unreachable this many seconds")
      ->capture_default_str();
  AddFormatFlag(cmd, &flags->format, {"text", "json"});
  AddRemoteFlags(cmd, &flags->remote);
  cmd->callback([&io, exit_code, flags] {
    auto remote = Remote::Connect(flags->remote);
    if (!remote.ok()) {
      *exit_code = ReportStatus(remote.status(), io);
      return;
    }
    const bool json = flags->format == "json";
    if (json && flags->sweep.empty()) {
      *exit_code = ReportStatus(
          absl::InvalidArgumentError("--format json follows one sweep: sfctl watch SWEEP"), io);
      return;
    }
    std::ostringstream discarded;  // with JSON events, the progress lines are not shown
    ProgressDisplay display(json ? discarded : io.out, !json && IsTerminal(io.out), &RealClock());
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
    ShowWatchNotes(&display, &options);
    if (json) {
      options.replay_finished = true;  // every event, also of a sweep already over
      options.on_event = [&io](const v1::SweepEvent& e) {
        io.out << EventJson(e) << "\n" << std::flush;
      };
    }
    absl::StatusOr<v1::Sweep> final_state =
        WatchUntilDone(**remote, sweep->id(), display, options, &RealClock());
    if (!final_state.ok()) {
      *exit_code = ReportStatus(final_state.status(), io);
      return;
    }
    if (!json && final_state->counts().failed() > 0) {
      // The reasons again at the end (the sweep may have finished before watching began).
      std::unique_ptr<ReadSource> reader = CoordinatorSource(remote->get());
      absl::StatusOr<std::vector<FailedJob>> failed =
          FetchFailedJobs(*reader, final_state->id(), 5);
      if (failed.ok()) PrintFailedJobs(*failed, final_state->counts().failed(), io.out);
    }
    *exit_code = ExitFor(*final_state);
  });
}

}  // namespace sf::cli
