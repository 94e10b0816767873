#include "cli/sfctl.h"

#include <iostream>
#include <sstream>

#include "absl/strings/str_format.h"
#include "cli/command.h"
#include "common/version.h"
#include "kernels/device.h"

namespace sf::cli {

int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return kExitUsage;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnavailable;
    case absl::StatusCode::kCancelled:
      return kExitInterrupted;
    default:
      return kExitFailure;
  }
}

int ReportStatus(const absl::Status& status, Io& io) {
  if (!status.ok()) io.err << "sfctl: " << status.message() << "\n";
  return ExitCodeFor(status);
}

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
      io.out << absl::StrFormat("%d  %-24s cc %d.%d  %3d SMs  %6.1f GiB (%6.1f GiB free)\n",
                                d.index, d.name, d.compute_capability_major,
                                d.compute_capability_minor, d.multiprocessor_count,
                                d.total_memory_bytes / 1073741824.0,
                                d.free_memory_bytes / 1073741824.0);
    }
    *exit_code = kExitOk;
  });
}

int RunSfctl(int argc, const char* const* argv, std::istream& in, std::ostream& out,
             std::ostream& err) {
  Io io{in, out, err};
  CLI::App app(
      "sfctl: run and analyse sparse-attention sweeps (The Sparse Frontier).\n"
      "Exit codes: 0 ok, 1 the work failed, 2 bad arguments or input, "
      "3 coordinator unavailable, 130 interrupted.",
      "sfctl");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(kProjectVersion));
  int exit_code = kExitOk;
  AddVersionCommand(app, io, &exit_code);
  AddDevicesCommand(app, io, &exit_code);
  AddTokenizeCommand(app, io, &exit_code);
  AddValidateCommand(app, io, &exit_code);
  AddMakeTinyModelCommand(app, io, &exit_code);
  AddTasksCommand(app, io, &exit_code);
  AddFidelityCommand(app, io, &exit_code);
  AddDumpQkvCommand(app, io, &exit_code);
  AddRunCommand(app, io, &exit_code);
  AddSubmitCommand(app, io, &exit_code);
  AddWatchCommand(app, io, &exit_code);
  AddStatusCommand(app, io, &exit_code);
  AddListCommand(app, io, &exit_code);
  AddCancelCommand(app, io, &exit_code);
  AddRetryCommand(app, io, &exit_code);
  AddResultsCommand(app, io, &exit_code);
  AddQueryCommand(app, io, &exit_code);
  AddExportCommand(app, io, &exit_code);
  AddWorkersCommand(app, io, &exit_code);
  AddAnalyzeCommand(app, io, &exit_code);
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) known |= sub->get_name() == argv[1];
    if (!known) {
      err << "sfctl: unknown command '" << argv[1] << "'; run 'sfctl --help' for the list\n";
      return kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    out << app.help();
    return kExitOk;
  } catch (const CLI::CallForAllHelp& e) {
    out << app.help("", CLI::AppFormatMode::All);
    return kExitOk;
  } catch (const CLI::CallForVersion& e) {
    out << "sfctl " << kProjectVersion << "\n";
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    // Help for a subcommand arrives as a ParseError too; CLI11's exit() prints it.
    std::ostringstream o, e2;
    const int code = app.exit(e, o, e2);
    out << o.str();
    err << e2.str();
    return code == 0 ? kExitOk : kExitUsage;
  }
  return exit_code;
}

}  // namespace sf::cli
