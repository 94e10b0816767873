// The shape of an sfctl command: each command file registers one subcommand on the
// CLI11 app and writes to the given streams, so commands are testable in process.
#ifndef SF_CLI_COMMAND_H_
#define SF_CLI_COMMAND_H_

#include <iosfwd>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace sf::cli {

// Exit codes scripts can rely on (documented in `sfctl --help` and docs/cli.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;      // the work itself failed (a job, a query)
inline constexpr int kExitUsage = 2;        // bad command line or invalid input: fix it
inline constexpr int kExitUnavailable = 3;  // the coordinator could not be reached: retry
inline constexpr int kExitLimit = 4;  // a limit stopped it (query time/memory/size, message size)
inline constexpr int kExitInterrupted = 130;

// Maps a Status to an exit code by what the caller should do next.
int ExitCodeFor(const absl::Status& status);

struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

// Prints "sfctl: <message>" for a non-OK status and returns its exit code.
int ReportStatus(const absl::Status& status, Io& io);

// Adds `--format` (the one name every command that prints data uses) with the allowed
// values `choices`; its default is *format's initial value.
CLI::Option* AddFormatFlag(CLI::App* cmd, std::string* format,
                           const std::vector<std::string>& choices = {"table", "csv", "json"});

// Registers one subcommand on `app`; when it is chosen, runs it and stores its exit code.
using AddCommandFn = void (*)(CLI::App& app, Io& io, int* exit_code);

// Parses argv as sfctl with only `commands` registered (in that order, which --help
// shows), runs the chosen one and returns its exit code; handles --help, --version, an
// unknown command (2) and bad arguments (2). RunSfctl (sfctl.h) registers every
// command; a command's test registers its own and links only its library.
int RunCommandLine(const std::vector<AddCommandFn>& commands, int argc, const char* const* argv,
                   std::istream& in, std::ostream& out, std::ostream& err);

// Registration functions, one per command file. Each adds its subcommand to `app`
// and, when that subcommand is chosen, runs it and stores its exit code.
void AddVersionCommand(CLI::App& app, Io& io, int* exit_code);
void AddDevicesCommand(CLI::App& app, Io& io, int* exit_code);
void AddTokenizeCommand(CLI::App& app, Io& io, int* exit_code);
void AddValidateCommand(CLI::App& app, Io& io, int* exit_code);
void AddMakeTinyModelCommand(CLI::App& app, Io& io, int* exit_code);
void AddTasksCommand(CLI::App& app, Io& io, int* exit_code);
void AddFidelityCommand(CLI::App& app, Io& io, int* exit_code);
void AddDumpQkvCommand(CLI::App& app, Io& io, int* exit_code);
// Coordinator clients (cmd_<name>.cc): every one takes --coordinator and --token-file.
void AddSubmitCommand(CLI::App& app, Io& io, int* exit_code);
void AddWatchCommand(CLI::App& app, Io& io, int* exit_code);
void AddStatusCommand(CLI::App& app, Io& io, int* exit_code);
void AddListCommand(CLI::App& app, Io& io, int* exit_code);
void AddCancelCommand(CLI::App& app, Io& io, int* exit_code);
void AddRetryCommand(CLI::App& app, Io& io, int* exit_code);
void AddResultsCommand(CLI::App& app, Io& io, int* exit_code);
void AddQueryCommand(CLI::App& app, Io& io, int* exit_code);
void AddExportCommand(CLI::App& app, Io& io, int* exit_code);
void AddWorkersCommand(CLI::App& app, Io& io, int* exit_code);
void AddJobCommand(CLI::App& app, Io& io, int* exit_code);
// Analysis of a sweep's results (--db file or --coordinator).
void AddAnalyzeCommand(CLI::App& app, Io& io, int* exit_code);
// The embedded default: in-process coordinator and local workers.
void AddRunCommand(CLI::App& app, Io& io, int* exit_code);

}  // namespace sf::cli

#endif  // SF_CLI_COMMAND_H_
