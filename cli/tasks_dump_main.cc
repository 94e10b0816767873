// sf-tasks-dump: `sfctl tasks dump` as a program of its own (same options), linking only
// the task generators and the tokenizer, for hosts that lack sfctl's dependencies.
#include <iostream>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "cli/tasks_dump.h"
#include "worker/model/tokenizer.h"

namespace {

// 0 ok, 1 the dump failed, 2 bad arguments or input (sfctl's exit codes).
int Run(const sf::cli::DumpArgs& args) {
  absl::StatusOr<std::string> path = sf::cli::DumpTokenizerPath(args);
  absl::StatusOr<std::unique_ptr<sf::HfTokenizer>> tok =
      path.ok() ? sf::HfTokenizer::FromFile(*path)
                : absl::StatusOr<std::unique_ptr<sf::HfTokenizer>>(path.status());
  absl::StatusOr<std::string> summary =
      tok.ok() ? sf::cli::WriteDump(args, **tok, std::cout) : tok.status();
  if (!summary.ok()) {
    std::cerr << "sf-tasks-dump: " << summary.status().message() << "\n";
    const absl::StatusCode code = summary.status().code();
    return code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kNotFound ||
                   code == absl::StatusCode::kFailedPrecondition
               ? 2
               : 1;
  }
  (args.output == "-" ? std::cerr : std::cout) << summary.value() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "sf-tasks-dump: write training samples from the task generators as JSON Lines; the "
      "same options as `sfctl tasks dump` (docs/tasks.md)",
      "sf-tasks-dump");
  sf::cli::DumpArgs args;
  sf::cli::AddDumpOptions(app, args);
  CLI11_PARSE(app, argc, argv);
  return Run(args);
}
