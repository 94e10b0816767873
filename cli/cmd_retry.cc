// sfctl retry: re-queue a sweep's failed (and optionally cancelled) jobs.
#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/sweep_ops.h"

namespace sf::cli {

void AddRetryCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    std::string sweep;
    bool include_cancelled = false;
    RemoteFlags remote;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "retry",
      "Re-queue a sweep's failed jobs with fresh attempts (samples already stored "
      "are kept, so each job resumes where it stopped)");
  cmd->add_option("sweep", flags->sweep, "sweep id or name")->required();
  cmd->add_flag("--include-cancelled", flags->include_cancelled, "re-queue cancelled jobs too");
  AddRemoteFlags(cmd, &flags->remote);
  cmd->callback([&io, exit_code, flags] {
    const bool include_cancelled = flags->include_cancelled;
    RunSweepAction(
        flags->remote, flags->sweep, io, exit_code,
        [include_cancelled](Remote& remote, const v1::Sweep& sweep) -> absl::StatusOr<std::string> {
          grpc::ClientContext context;
          remote.Prepare(&context);
          v1::RetryFailedRequest request;
          request.set_sweep_id(sweep.id());
          request.set_include_cancelled(include_cancelled);
          v1::RetryFailedResponse response;
          grpc::Status status = remote.stub().RetryFailed(&context, request, &response);
          if (!status.ok()) return remote.Error(status, "RetryFailed");
          return absl::StrCat("re-queued ", response.jobs_requeued(), " jobs");
        });
  });
}

}  // namespace sf::cli
