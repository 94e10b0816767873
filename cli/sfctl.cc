#include "cli/sfctl.h"

#include <iostream>
#include <vector>

#include "absl/strings/str_format.h"
#include "cli/command.h"
#include "common/version.h"
#include "kernels/device.h"

namespace sf::cli {

void AddVersionCommand(CLI::App& app, Io& io, int* exit_code) {
  CLI::App* cmd = app.add_subcommand("version", "Print the version, engine version and build");
  cmd->callback([&io, exit_code] {
    io.out << "sfctl " << kProjectVersion << "\n"
           << "engine " << kEngineVersion << "\n"
           << "commit " << kGitCommit << "\n"
           << "cuda " << (kBuiltWithCuda ? "yes" : "no") << "\n";
    *exit_code = kExitOk;
  });
}

void AddDevicesCommand(CLI::App& app, Io& io, int* exit_code) {
  CLI::App* cmd = app.add_subcommand("devices", "List the CUDA devices this machine offers");
  cmd->callback([&io, exit_code] {
    absl::StatusOr<std::vector<DeviceInfo>> devices = ListDevices();
    if (!devices.ok()) {
      *exit_code = ReportStatus(devices.status(), io);
      return;
    }
    if (devices->empty()) {
      io.out << "no CUDA device: " << NoDeviceReason() << "; workers here use the CPU backend\n";
    }
    for (const DeviceInfo& d : *devices) {
      io.out << absl::StrFormat(
          "%d  %-24s cc %d.%d  %3d SMs  %6.1f GiB (%6.1f GiB free)\n", d.index, d.name,
          d.compute_capability_major, d.compute_capability_minor, d.multiprocessor_count,
          d.total_memory_bytes / 1073741824.0, d.free_memory_bytes / 1073741824.0);
    }
    *exit_code = kExitOk;
  });
}

int RunSfctl(int argc, const char* const* argv, std::istream& in, std::ostream& out,
             std::ostream& err) {
  static const std::vector<AddCommandFn>* const kEveryCommand = new std::vector<AddCommandFn>{
      AddVersionCommand,       AddDevicesCommand, AddTokenizeCommand, AddValidateCommand,
      AddMakeTinyModelCommand, AddTasksCommand,   AddFidelityCommand, AddDumpQkvCommand,
      AddRunCommand,           AddSubmitCommand,  AddWatchCommand,    AddStatusCommand,
      AddListCommand,          AddCancelCommand,  AddRetryCommand,    AddResultsCommand,
      AddJobCommand,           AddQueryCommand,   AddExportCommand,   AddWorkersCommand,
      AddAnalyzeCommand};
  return RunCommandLine(*kEveryCommand, argc, argv, in, out, err);
}

}  // namespace sf::cli
