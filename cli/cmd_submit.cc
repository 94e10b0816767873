// sfctl submit: validate and expand a sweep spec, send it to the coordinator.
#include <sstream>

#include "cli/command.h"
#include "cli/sweep_ops.h"
#include "nlohmann/json.hpp"

namespace sf::cli {

void AddSubmitCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    SubmitFlags submit;
    RemoteFlags remote;
    std::string format = "text";
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "submit",
      "Validate and expand a sweep spec and submit its jobs to the coordinator. Jobs whose "
      "results already exist (same key) are reused, so resubmitting runs only what is "
      "missing; prints the sweep id and how many jobs are new and reused");
  cmd->add_option("spec", flags->submit.spec_path, "sweep spec (YAML)")->required();
  cmd->add_flag("--force", flags->submit.force, "re-run jobs that already have results");
  cmd->add_option("--name", flags->submit.name, "sweep name (default: the spec's name)");
  cmd->add_option("--priority", flags->submit.priority, "higher runs first")->capture_default_str();
  cmd->add_option("--max-attempts", flags->submit.max_attempts,
                  "failed attempts before a job is failed (0 = the coordinator's default)");
  AddSpecOverrideFlag(cmd, &flags->submit.overrides);
  AddFormatFlag(cmd, &flags->format, {"text", "json"});
  AddRemoteFlags(cmd, &flags->remote);
  cmd->callback([&io, exit_code, flags] {
    absl::StatusOr<v1::SubmitSweepRequest> request = BuildSubmitRequest(flags->submit);
    if (!request.ok()) {
      *exit_code = ReportStatus(request.status(), io);
      return;
    }
    auto remote = Remote::Connect(flags->remote);
    if (!remote.ok()) {
      *exit_code = ReportStatus(remote.status(), io);
      return;
    }
    if (flags->format != "json") {
      *exit_code = ReportStatus(Submit(**remote, *request, io).status(), io);
      return;
    }
    std::ostringstream text;  // the one-line summary, replaced by JSON
    Io quiet{io.in, text, io.err};
    absl::StatusOr<v1::SubmitSweepResponse> response = Submit(**remote, *request, quiet);
    if (response.ok()) {
      io.out << nlohmann::ordered_json{{"sweep_id", response->sweep_id()},
                                       {"name", request->sweep_name()},
                                       {"jobs", response->jobs_total()},
                                       {"new", response->jobs_queued()},
                                       {"reused", response->jobs_reused()}}
                    .dump(2)
             << "\n";
    }
    *exit_code = ReportStatus(response.status(), io);
  });
}

}  // namespace sf::cli
