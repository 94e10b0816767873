// Runs sfctl in process with only the commands a test names registered, so a command's
// test links that command's library and not every other: arguments in, exit code and
// both output streams out.
#ifndef SF_CLI_TESTING_RUN_COMMANDS_H_
#define SF_CLI_TESTING_RUN_COMMANDS_H_

#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cli/command.h"

namespace sf::cli {

struct CliResult {
  int code;
  std::string out;
  std::string err;
};

// `args` without the program name; `stdin_text` is what the command reads on stdin.
inline CliResult RunCommands(const std::vector<AddCommandFn>& commands,
                             std::vector<std::string> args, const std::string& stdin_text = "") {
  args.insert(args.begin(), "sfctl");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  const int code =
      RunCommandLine(commands, static_cast<int>(argv.size()), argv.data(), in, out, err);
  return {code, out.str(), err.str()};
}

}  // namespace sf::cli

#endif  // SF_CLI_TESTING_RUN_COMMANDS_H_
