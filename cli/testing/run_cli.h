// Runs the whole sfctl (every command, RunSfctl) in process for tests that need more
// than one command library: arguments in, exit code and both output streams out.
#ifndef SF_CLI_TESTING_RUN_CLI_H_
#define SF_CLI_TESTING_RUN_CLI_H_

#include <sstream>
#include <string>
#include <vector>

#include "cli/sfctl.h"
#include "cli/testing/run_commands.h"

namespace sf::cli {

// `args` without the program name; `stdin_text` is what the command reads on stdin.
inline CliResult RunCli(std::vector<std::string> args, const std::string& stdin_text = "") {
  args.insert(args.begin(), "sfctl");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  const int code = RunSfctl(static_cast<int>(argv.size()), argv.data(), in, out, err);
  return {code, out.str(), err.str()};
}

}  // namespace sf::cli

#endif  // SF_CLI_TESTING_RUN_CLI_H_
