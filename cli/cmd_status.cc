// sfctl status: one sweep's counts and its failed jobs' reasons, or a summary line per
// running sweep; from a coordinator or a results file (--db).
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "cli/sweep_ops.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace sf::cli {
namespace {

constexpr int64_t kFailuresShown = 5;

nlohmann::ordered_json SweepJson(const v1::Sweep& sweep) {
  const v1::SweepCounts& c = sweep.counts();
  return {{"id", sweep.id()},
          {"name", sweep.name()},
          {"state", SweepStateName(sweep.state())},
          {"priority", sweep.priority()},
          {"created_unix_ms", sweep.created_unix_ms()},
          {"jobs", c.total()},
          {"queued", c.queued()},
          {"running", c.leased()},
          {"done", c.done()},
          {"failed", c.failed()},
          {"cancelled", c.cancelled()},
          {"preempted", c.preemptions()},
          {"samples_done", c.samples_done()},
          {"samples_total", c.samples_total()}};
}

void PrintSweepText(const v1::Sweep& sweep, std::ostream& out) {
  const v1::SweepCounts& c = sweep.counts();
  out << "sweep " << sweep.id() << " '" << sweep.name() << "': " << SweepStateName(sweep.state())
      << " (priority " << sweep.priority() << ", created "
      << absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMillis(sweep.created_unix_ms()),
                          absl::UTCTimeZone())
      << ")\n"
      << absl::StrFormat("  jobs     %8d total\n", c.total())
      << absl::StrFormat("  queued   %8d\n  running  %8d\n  done     %8d\n", c.queued(), c.leased(),
                         c.done())
      << absl::StrFormat("  failed   %8d\n  cancelled%8d\n  preempted%8d (not failures)\n",
                         c.failed(), c.cancelled(), c.preemptions())
      << absl::StrFormat("  samples  %8d / %d\n", c.samples_done(), c.samples_total());
}

// Every running sweep, one line (or one JSON object) each.
absl::Status PrintRunningSweeps(ReadSource& source, bool json, std::ostream& out) {
  SF_ASSIGN_OR_RETURN(v1::ListSweepsResponse response, source.ListSweeps({}));
  nlohmann::ordered_json array = nlohmann::ordered_json::array();
  int shown = 0;
  for (const v1::Sweep& s : response.sweeps()) {
    if (s.state() != v1::SWEEP_STATE_RUNNING) continue;
    if (json) {
      array.push_back(SweepJson(s));
    } else {
      out << s.id() << "  " << FormatProgressLine(s, 0, 20) << "\n";
    }
    ++shown;
  }
  if (json) {
    out << array.dump(2) << "\n";
  } else if (shown == 0) {
    out << "no running sweep ('sfctl list' shows finished ones)\n";
  }
  return absl::OkStatus();
}

absl::Status PrintSweepStatus(ReadSource& source, const std::string& id_or_name, bool json,
                              std::ostream& out) {
  SF_ASSIGN_OR_RETURN(v1::Sweep sweep, FindSweep(source, id_or_name));
  std::vector<FailedJob> failed;
  if (sweep.counts().failed() > 0) {
    SF_ASSIGN_OR_RETURN(failed, FetchFailedJobs(source, sweep.id(), kFailuresShown));
  }
  if (!json) {
    PrintSweepText(sweep, out);
    PrintFailedJobs(failed, sweep.counts().failed(), out);
    return absl::OkStatus();
  }
  nlohmann::ordered_json object = SweepJson(sweep);
  nlohmann::ordered_json failures = nlohmann::ordered_json::array();
  for (const FailedJob& f : failed) {
    failures.push_back({{"key", f.key}, {"job", f.axes}, {"error", f.error}});
  }
  object["failures"] = std::move(failures);
  out << object.dump(2) << "\n";
  return absl::OkStatus();
}

}  // namespace

void AddStatusCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    std::string sweep;
    std::string format = "text";
    ReadFlags read;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "status",
      "Show a sweep's job counts (queued, running, done, failed, cancelled, preempted, "
      "samples) and why its latest failed jobs failed, or one line per running sweep; from a "
      "coordinator or a results file (--db)");
  cmd->add_option("sweep", flags->sweep, "sweep id or name (default: every running sweep)");
  AddFormatFlag(cmd, &flags->format, {"text", "json"});
  AddReadFlags(cmd, &flags->read);
  cmd->callback([&io, exit_code, flags] {
    absl::StatusOr<std::unique_ptr<ReadSource>> source = OpenReadSource(flags->read);
    if (!source.ok()) {
      *exit_code = ReportStatus(source.status(), io);
      return;
    }
    const bool json = flags->format == "json";
    absl::Status status = flags->sweep.empty()
                              ? PrintRunningSweeps(**source, json, io.out)
                              : PrintSweepStatus(**source, flags->sweep, json, io.out);
    *exit_code = ReportStatus(status, io);
  });
}

}  // namespace sf::cli
