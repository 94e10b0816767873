// sfctl cancel: cancel a sweep's queued and running jobs.
#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/sweep_ops.h"

namespace sf::cli {

void AddCancelCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    std::string sweep;
    RemoteFlags remote;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "cancel",
      "Cancel a sweep: its queued jobs are dropped and running ones are stopped at their "
      "worker's next heartbeat. Jobs shared with another live sweep keep running; finished "
      "results are kept. 'sfctl retry --include-cancelled' brings them back");
  cmd->add_option("sweep", flags->sweep, "sweep id or name")->required();
  AddRemoteFlags(cmd, &flags->remote);
  cmd->callback([&io, exit_code, flags] {
    RunSweepAction(flags->remote, flags->sweep, io, exit_code,
                   [](Remote& remote, const v1::Sweep& sweep) -> absl::StatusOr<std::string> {
                     grpc::ClientContext context;
                     remote.Prepare(&context);
                     v1::CancelSweepRequest request;
                     request.set_sweep_id(sweep.id());
                     v1::CancelSweepResponse response;
                     grpc::Status status = remote.stub().CancelSweep(&context, request, &response);
                     if (!status.ok()) return remote.Error(status, "CancelSweep");
                     return absl::StrCat("cancelled ", response.jobs_cancelled(), " jobs");
                   });
  });
}

}  // namespace sf::cli
