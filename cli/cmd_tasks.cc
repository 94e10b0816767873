#include "cli/cmd_tasks.h"

#include <algorithm>
#include <filesystem>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/tasks_dump.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "tasks/task.h"
#include "worker/model/tokenizer.h"

namespace sf::cli {
namespace {

// Previews size prompts with the model's own tokenizer, as workers do.
absl::StatusOr<std::unique_ptr<Tokenizer>> OpenHfTokenizer(const std::string& path) {
  SF_ASSIGN_OR_RETURN(std::unique_ptr<HfTokenizer> tok, HfTokenizer::FromFile(path));
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

void PrintList(Io& io) {
  for (const tasks::TaskInfo& info : tasks::AllTasks()) {
    io.out << info.name << "\n  " << info.summary << "\n  metric: " << info.metric << "\n";
    for (const tasks::ParamSpec& p : info.params) {
      io.out << absl::StrFormat(
          "    %-22s %-12s %s\n", p.name,
          p.required ? "(required)" : absl::StrCat("= ", tasks::ParamToString(p.default_value)),
          p.help);
    }
  }
}

// A parameter value as JSON (its natural type).
nlohmann::ordered_json ParamJson(const ParamValue& v) {
  return std::visit([](const auto& x) { return nlohmann::ordered_json(x); }, v);
}

void PrintListJson(Io& io) {
  nlohmann::ordered_json tasks = nlohmann::ordered_json::array();
  for (const tasks::TaskInfo& info : tasks::AllTasks()) {
    nlohmann::ordered_json params = nlohmann::ordered_json::array();
    for (const tasks::ParamSpec& p : info.params) {
      nlohmann::ordered_json param = {{"name", p.name},
                                      {"default", ParamJson(p.default_value)},
                                      {"required", p.required},
                                      {"help", p.help}};
      if (p.default_value.index() == 0) {
        param["min"] = p.min;
        param["max"] = p.max;
      }
      if (!p.choices.empty()) param["choices"] = p.choices;
      params.push_back(std::move(param));
    }
    tasks.push_back({{"name", info.name},
                     {"summary", info.summary},
                     {"metric", info.metric},
                     {"params", std::move(params)}});
  }
  io.out << tasks.dump(2) << "\n";
}

std::string Clip(const std::string& text, size_t head, size_t tail) {
  if (text.size() <= head + tail + 32) return text;
  return absl::StrCat(text.substr(0, head), "\n[... ", text.size() - head - tail,
                      " characters ...]\n", text.substr(text.size() - tail));
}

struct PreviewArgs {
  std::string task;
  int64_t length = 0;
  std::string tokenizer;
  std::string model;
  int64_t index = 0;
  uint64_t seed = 43;
  std::vector<std::string> params;
  int64_t template_overhead = 64;
  int64_t answer_reserve = 0;
  size_t context_chars = 600;
  bool full = false;
};

// The tokenizer.json that --tokenizer or --model names; exactly one of them.
absl::StatusOr<std::string> TokenizerPath(const std::string& tokenizer, const std::string& model) {
  if (tokenizer.empty() == model.empty()) {
    return absl::InvalidArgumentError("give exactly one of --tokenizer FILE or --model DIR");
  }
  return tokenizer.empty() ? (std::filesystem::path(model) / "tokenizer.json").string() : tokenizer;
}

absl::Status Preview(const PreviewArgs& a, const TokenizerOpener& open, Io& io) {
  SF_ASSIGN_OR_RETURN(const tasks::TaskInfo* info, tasks::FindTask(a.task));
  SF_ASSIGN_OR_RETURN(ParamMap given, tasks::ParseParamStrings(*info, a.params));
  SF_ASSIGN_OR_RETURN(std::unique_ptr<tasks::Task> task, tasks::CreateTask(a.task, given));
  SF_ASSIGN_OR_RETURN(std::string path, TokenizerPath(a.tokenizer, a.model));
  SF_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, open(path));
  tasks::PromptBudget budget{a.length, a.template_overhead, a.answer_reserve};
  SF_ASSIGN_OR_RETURN(tasks::Sample s, task->Generate(*tok, budget, a.seed, a.index));
  io.out << "task      " << s.task << "  (seed " << s.seed << ", index " << s.index << ")\n"
         << "length    " << s.target_length << "  prompt " << s.prompt_tokens << " tokens + "
         << budget.template_overhead << " template = " << s.prompt_tokens + budget.template_overhead
         << " (window " << budget.MinPromptTokens() + budget.template_overhead << ".."
         << budget.MaxPromptTokens() + budget.template_overhead << ")\n"
         << "tokenizer " << tok->Name() << "\n"
         << "filler    " << s.filler_units << " units\n";
  for (const auto& [k, v] : s.metadata) {
    if (v.size() <= 120) io.out << "meta      " << k << " = " << v << "\n";
  }
  io.out << "\n--- questions ---\n"
         << absl::StrJoin(s.questions, "\n") << "\n"
         << "\n--- expected answer ---\n"
         << s.gold << "\n"
         << "\n--- " << (a.full ? "prompt" : "context (head and tail)") << " ---\n"
         << (a.full ? s.prompt : Clip(s.context, a.context_chars, a.context_chars)) << "\n";
  return absl::OkStatus();
}

absl::Status Dump(const DumpArgs& a, const TokenizerOpener& open, Io& io) {
  SF_RETURN_IF_ERROR(CheckDumpSeeds(a.request));
  SF_ASSIGN_OR_RETURN(std::string path, DumpTokenizerPath(a));
  SF_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, open(path));
  SF_ASSIGN_OR_RETURN(std::string summary, WriteDump(a, *tok, io.out));
  // With --output - the samples are stdout; the summary goes beside them on stderr.
  (a.output == "-" ? io.err : io.out) << summary << "\n";
  return absl::OkStatus();
}

void AddDumpCommand(CLI::App& cmd, Io& io, int* exit_code, const TokenizerOpener& open) {
  auto args = std::make_shared<DumpArgs>();
  CLI::App* dump = cmd.add_subcommand(
      "dump",
      "Write training samples as JSON Lines (prompt, answers, gold, completion, metadata; "
      "token ids with --ids). Sample seeds (seed + index) below 2^32 belong to evaluation "
      "and are refused, as are the QA tasks (their questions are the evaluation's)");
  AddDumpOptions(*dump, *args);
  dump->callback(
      [&io, exit_code, args, open] { *exit_code = ReportStatus(Dump(*args, open, io), io); });
}

}  // namespace

void AddTasksCommandWithOpener(CLI::App& app, Io& io, int* exit_code, TokenizerOpener open) {
  CLI::App* cmd = app.add_subcommand(
      "tasks", "List the evaluation tasks, preview a sample or dump training samples");
  cmd->require_subcommand(1);
  CLI::App* list = cmd->add_subcommand("list", "List the tasks with their parameters and defaults");
  auto format = std::make_shared<std::string>("text");
  AddFormatFlag(list, format.get(), {"text", "json"});
  list->callback([&io, exit_code, format] {
    if (*format == "json") {
      PrintListJson(io);
    } else {
      PrintList(io);
    }
    *exit_code = kExitOk;
  });
  auto args = std::make_shared<PreviewArgs>();
  CLI::App* preview = cmd->add_subcommand(
      "preview",
      "Generate one sample sized with a model's tokenizer and print its questions, expected "
      "answer and the head and tail of its context");
  preview->add_option("task", args->task, "Task name (see 'sfctl tasks list')")->required();
  preview->add_option("--length", args->length, "Target length L in tokens (template included)")
      ->required();
  preview->add_option("--tokenizer", args->tokenizer, "A tokenizer.json file");
  preview->add_option("--model", args->model, "A model folder holding tokenizer.json");
  preview->add_option("--index", args->index, "Sample index")->capture_default_str();
  preview->add_option("--seed", args->seed, "Run seed")->capture_default_str();
  preview->add_option("--param,-p", args->params, "Task parameter name=value (repeatable)");
  preview
      ->add_option("--template-overhead", args->template_overhead,
                   "Tokens reserved for the chat template")
      ->capture_default_str();
  preview->add_option("--answer-reserve", args->answer_reserve, "Tokens reserved for the answer")
      ->capture_default_str();
  preview
      ->add_option("--context-chars", args->context_chars,
                   "Characters of context shown at each end")
      ->capture_default_str();
  preview->add_flag("--full", args->full, "Print the whole prompt instead of the context ends");
  preview->callback(
      [&io, exit_code, args, open] { *exit_code = ReportStatus(Preview(*args, open, io), io); });
  AddDumpCommand(*cmd, io, exit_code, open);
}

void AddTasksCommand(CLI::App& app, Io& io, int* exit_code) {
  AddTasksCommandWithOpener(app, io, exit_code, OpenHfTokenizer);
}

}  // namespace sf::cli
