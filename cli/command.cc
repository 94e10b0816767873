#include "cli/command.h"

#include <ostream>
#include <sstream>
#include <string>

#include "common/version.h"

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
    case absl::StatusCode::kResourceExhausted:
      return kExitLimit;
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

int RunCommandLine(const std::vector<AddCommandFn>& commands, int argc, const char* const* argv,
                   std::istream& in, std::ostream& out, std::ostream& err) {
  Io io{in, out, err};
  CLI::App app(
      "sfctl: run and analyse sparse-attention sweeps (The Sparse Frontier).\n"
      "Exit codes: 0 ok, 1 the work failed, 2 bad arguments or input, "
      "3 coordinator unavailable, 4 stopped at a limit (query time, memory or size), "
      "130 interrupted.",
      "sfctl");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(kProjectVersion));
  int exit_code = kExitOk;
  for (AddCommandFn add : commands) add(app, io, &exit_code);
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
