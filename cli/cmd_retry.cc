// sfctl retry: re-queue a sweep's failed (and optionally cancelled) jobs.
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
      "retry", "Re-queue a sweep's failed jobs with fresh attempts (samples already stored "
               "are kept, so each job resumes where it stopped)");
  cmd->add_option("sweep", flags->sweep, "sweep id or name")->required();
  cmd->add_flag("--include-cancelled", flags->include_cancelled, "re-queue cancelled jobs too");
  AddRemoteFlags(cmd, &flags->remote);
  cmd->callback([&io, exit_code, flags] {
    auto remote = Remote::Connect(flags->remote);
    if (!remote.ok()) {
      *exit_code = ReportStatus(remote.status(), io);
      return;
    }
    absl::StatusOr<v1::Sweep> sweep = (*remote)->FindSweep(flags->sweep);
    if (!sweep.ok()) {
      *exit_code = ReportStatus(sweep.status(), io);
      return;
    }
    grpc::ClientContext context;
    (*remote)->Prepare(&context);
    v1::RetryFailedRequest request;
    request.set_sweep_id(sweep->id());
    request.set_include_cancelled(flags->include_cancelled);
    v1::RetryFailedResponse response;
    grpc::Status status = (*remote)->stub().RetryFailed(&context, request, &response);
    if (!status.ok()) {
      *exit_code = ReportStatus((*remote)->Error(status, "RetryFailed"), io);
      return;
    }
    io.out << "sweep " << sweep->id() << " '" << sweep->name() << "': re-queued "
           << response.jobs_requeued() << " jobs\n";
    *exit_code = kExitOk;
  });
}

}  // namespace sf::cli
