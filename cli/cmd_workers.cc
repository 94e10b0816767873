// sfctl workers: the workers the coordinator knows, with devices and leased jobs.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "cli/command.h"
#include "cli/sweep_ops.h"

namespace sf::cli {

void AddWorkersCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    bool all = false;
    std::string format = "table";
    RemoteFlags remote;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "workers",
      "List workers: devices, backends, last contact, leased jobs, jobs done, Slurm job and "
      "node");
  cmd->add_flag("--all", flags->all, "include workers not seen for 3 lease lifetimes");
  AddFormatFlag(cmd, &flags->format);
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
    v1::ListWorkersRequest request;
    request.set_include_stale(flags->all);
    v1::ListWorkersResponse response;
    grpc::Status status = (*remote)->stub().ListWorkers(&context, request, &response);
    if (!status.ok()) {
      *exit_code = ReportStatus((*remote)->Error(status, "ListWorkers"), io);
      return;
    }
    Table table;
    table.columns = {"worker",     "host",   "devices",   "backends",  "methods",
                     "seen_s_ago", "leased", "jobs_done", "slurm_job", "slurm_node"};
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    for (const v1::WorkerInfo& w : response.workers()) {
      std::string devices = w.devices().empty() ? "cpu" : "";
      for (const v1::Device& d : w.devices()) {
        absl::StrAppend(&devices, devices.empty() ? "" : ", ", d.index(), ":", d.name());
      }
      table.rows.push_back({w.worker_id(), w.hostname(), devices, absl::StrJoin(w.backends(), ","),
                            static_cast<int64_t>(w.methods_size()),
                            (now_ms - w.last_seen_unix_ms()) / 1000,
                            absl::StrJoin(w.leased_job_keys(), ","), w.jobs_done(),
                            w.slurm_job_id(), w.slurm_node()});
    }
    PrintTable(table, *format, io.out);
    if (*format == Format::kTable && table.rows.empty()) io.out << "(no workers)\n";
    *exit_code = kExitOk;
  });
}

}  // namespace sf::cli
