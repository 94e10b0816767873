#include "cli/command.h"

#include <algorithm>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/did_you_mean.h"
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

CLI::Option* AddFormatFlag(CLI::App* cmd, std::string* format,
                           const std::vector<std::string>& choices) {
  std::string help;
  for (size_t i = 0; i < choices.size(); ++i) {
    help += i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ";
    help += choices[i];
  }
  return cmd->add_option("--format", *format, "output format: " + help)
      ->capture_default_str()
      ->check(CLI::IsMember(choices));
}

namespace {

std::vector<std::string> CommandNames(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands({})) names.push_back(sub->get_name());
  return names;
}

// Every long flag of `cmd` and of its subcommands, e.g. "--format".
std::vector<std::string> FlagNames(const CLI::App& cmd) {
  std::vector<std::string> names = {"--help"};
  for (const CLI::Option* option : cmd.get_options({})) {
    for (const std::string& name : option->get_lnames()) names.push_back("--" + name);
  }
  return names;
}

// A bash completion script (zsh loads it through bashcompinit) for every command and
// its flags; files complete elsewhere.
std::string CompletionScript(const CLI::App& app, const std::string& shell) {
  std::string script;
  if (shell == "zsh") script += "autoload -U +X bashcompinit && bashcompinit\n";
  script += "# sfctl completion for " + shell + ": source <(sfctl completion " + shell + ")\n";
  script += "_sfctl() {\n  local cur=${COMP_WORDS[COMP_CWORD]} opts=\"\"\n";
  script += "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n    COMPREPLY=($(compgen -W \"";
  for (const std::string& name : CommandNames(app)) script += name + " ";
  script += "--help --version\" -- \"$cur\"))\n    return\n  fi\n  case \"${COMP_WORDS[1]}\" in\n";
  for (const CLI::App* sub : app.get_subcommands({})) {
    script += "    " + sub->get_name() + ") opts=\"";
    for (const std::string& flag : FlagNames(*sub)) script += flag + " ";
    for (const CLI::App* nested : sub->get_subcommands({})) script += nested->get_name() + " ";
    script += "\" ;;\n";
  }
  script += "  esac\n  if [[ $cur == -* || -z $cur && ${COMP_WORDS[1]} == tasks ]]; then\n";
  script += "    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n  else\n";
  script += "    COMPREPLY=($(compgen -f -- \"$cur\"))\n  fi\n}\n";
  script += "complete -o filenames -F _sfctl sfctl\n";
  return script;
}

void AddCompletionCommand(CLI::App& app, Io& io, int* exit_code) {
  CLI::App* cmd = app.add_subcommand(
      "completion",
      "Print a shell completion script for commands and flags: source <(sfctl completion "
      "bash), or put it in a file your shell loads");
  auto shell = std::make_shared<std::string>();
  cmd->add_option("shell", *shell, "bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));
  cmd->callback([&app, &io, exit_code, shell] {
    io.out << CompletionScript(app, *shell);
    *exit_code = kExitOk;
  });
}

// "; did you mean '--format'?" for the first flag of argv that the chosen command does
// not know, with the command's name; "" when there is none or nothing is close.
std::string FlagSuggestion(const CLI::App& app, int argc, const char* const* argv) {
  const CLI::App* chosen = nullptr;
  for (const CLI::App* sub : app.get_subcommands({})) {
    if (argc > 1 && sub->get_name() == argv[1]) chosen = sub;
  }
  if (chosen == nullptr) return "";
  const CLI::App* nested = chosen;
  for (const CLI::App* sub : chosen->get_subcommands({})) {
    if (argc > 2 && sub->get_name() == argv[2]) nested = sub;
  }
  std::vector<std::string> known = FlagNames(*nested);
  for (const std::string& name : FlagNames(*chosen)) known.push_back(name);
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.rfind("--", 0) != 0) continue;
    arg = arg.substr(0, arg.find('='));
    if (std::find(known.begin(), known.end(), arg) != known.end()) continue;
    std::optional<std::string> close = ClosestName(arg, known);
    return absl::StrCat(
        "sfctl ",
        nested == chosen ? chosen->get_name() : chosen->get_name() + " " + nested->get_name(),
        ": unknown flag '", arg, "'",
        close ? absl::StrCat("; did you mean '", *close, "'?") : std::string(), "\n");
  }
  return "";
}

}  // namespace

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
  AddCompletionCommand(app, io, &exit_code);
  if (argc > 1 && argv[1][0] != '-') {
    const std::vector<std::string> names = CommandNames(app);
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) {
      known |= sub->get_name() == argv[1];
      for (const std::string& alias : sub->get_aliases()) known |= alias == argv[1];
    }
    if (!known) {
      std::optional<std::string> close = ClosestName(argv[1], names);
      err << "sfctl: unknown command '" << argv[1] << "'"
          << (close ? absl::StrCat("; did you mean '", *close, "'?") : std::string())
          << " (sfctl --help lists the commands)\n";
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
    err << FlagSuggestion(app, argc, argv);
    const int code = app.exit(e, o, e2);
    out << o.str();
    err << e2.str();
    return code == 0 ? kExitOk : kExitUsage;
  }
  return exit_code;
}

}  // namespace sf::cli
