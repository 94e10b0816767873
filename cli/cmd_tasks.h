// `sfctl tasks`: list the tasks and preview a sample. The tokenizer that sizes previews
// is opened through a TokenizerOpener, so the command is testable without model files.
#ifndef SF_CLI_CMD_TASKS_H_
#define SF_CLI_CMD_TASKS_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cli/command.h"
#include "common/tokenizer.h"

namespace sf::cli {

// Opens a tokenizer from a tokenizer.json path. NotFound / InvalidArgument for a bad file.
using TokenizerOpener =
    std::function<absl::StatusOr<std::unique_ptr<Tokenizer>>(const std::string& path)>;

// As AddTasksCommand, with an explicit opener (tests pass their own).
void AddTasksCommandWithOpener(CLI::App& app, Io& io, int* exit_code, TokenizerOpener open);

}  // namespace sf::cli

#endif  // SF_CLI_CMD_TASKS_H_
