#include "cli/tasks_dump.h"

#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "tasks/task.h"
#include "worker/model/chat_template.h"
#include "worker/model/tokenizer.h"

namespace sf::cli {
namespace {

// The token that ends the assistant's turn, so a model trained on the dump stops there
// (config.json's eos_token_id names the same token).
absl::StatusOr<TokenId> EndOfTurn(ChatFormat format, const HfTokenizer& tokenizer) {
  const char* name = nullptr;
  if (format == ChatFormat::kChatMl) name = "<|im_end|>";
  if (format == ChatFormat::kLlama3) name = "<|eot_id|>";
  std::optional<TokenId> id = name != nullptr ? tokenizer.TokenToId(name) : tokenizer.EosId();
  if (!id) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--ids: the tokenizer has no end-of-turn token for the ", ChatFormatName(format),
        " chat format (", name != nullptr ? name : "an eos_token", ")"));
  }
  return *id;
}

nlohmann::json ParamsJson(const ParamMap& params) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, value] : params) out[name] = tasks::ParamToString(value);
  return out;
}

}  // namespace

absl::Status CheckDumpSeeds(const DumpRequest& request) {
  if (request.count < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--count must be at least 1, not ", request.count));
  }
  if (request.seed < tasks::kFirstTrainingSeed) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--seed ", request.seed, ": sample seeds below ", tasks::kFirstTrainingSeed,
        " (2^32) are reserved for evaluation (a sweep's sample i of seed s has sample seed "
        "s + i); dump training samples from --seed ",
        tasks::kFirstTrainingSeed, " or above"));
  }
  if (static_cast<uint64_t>(request.count - 1) >
      std::numeric_limits<uint64_t>::max() - request.seed) {
    return absl::InvalidArgumentError(absl::StrCat("--seed ", request.seed, " + --count ",
                                                   request.count, " passes 2^64; lower either"));
  }
  SF_ASSIGN_OR_RETURN(const tasks::TaskInfo* info, tasks::FindTask(request.task));
  if (info->ReadsDatasetFile()) {
    return absl::InvalidArgumentError(
        absl::StrCat(request.task,
                     " asks the questions of its dataset file, which evaluation asks too, "
                     "whatever the seed; dump only generated tasks (ruler_*, story_*)"));
  }
  return absl::OkStatus();
}

absl::Status DumpSamples(const DumpRequest& request, const Tokenizer& tokenizer,
                         std::ostream& out) {
  SF_RETURN_IF_ERROR(CheckDumpSeeds(request));
  SF_ASSIGN_OR_RETURN(const tasks::TaskInfo* info, tasks::FindTask(request.task));
  SF_ASSIGN_OR_RETURN(ParamMap given, tasks::ParseParamStrings(*info, request.params));
  SF_ASSIGN_OR_RETURN(ParamMap params, tasks::ResolveParams(*info, given));
  SF_ASSIGN_OR_RETURN(std::unique_ptr<tasks::Task> task, tasks::CreateTask(request.task, given));
  const tasks::PromptBudget budget{request.length, request.template_overhead,
                                   request.answer_reserve};
  SF_RETURN_IF_ERROR(budget.Validate());

  const HfTokenizer* hf = nullptr;
  ChatFormat format = ChatFormat::kRaw;
  TokenId end_of_turn = 0;
  if (request.ids) {
    hf = dynamic_cast<const HfTokenizer*>(&tokenizer);
    if (hf == nullptr) {
      return absl::InvalidArgumentError("--ids needs a tokenizer.json tokenizer");
    }
    format = DetectChatFormat(*hf);
    SF_ASSIGN_OR_RETURN(end_of_turn, EndOfTurn(format, *hf));
  }

  for (int64_t index = 0; index < request.count; ++index) {
    absl::StatusOr<tasks::Sample> sample = task->Generate(tokenizer, budget, request.seed, index);
    if (!sample.ok()) {
      return Annotate(sample.status(),
                      absl::StrCat(request.task, " sample ", index, " (seed ", request.seed, ")"));
    }
    nlohmann::json line;
    line["task"] = sample->task;
    line["length"] = request.length;
    line["seed"] = request.seed;
    line["index"] = index;
    line["sample_seed"] = request.seed + static_cast<uint64_t>(index);
    line["params"] = ParamsJson(params);
    line["tokenizer"] = tokenizer.Name();
    line["prompt"] = sample->prompt;
    line["questions"] = sample->questions;
    line["answers"] = sample->answers;
    line["gold"] = sample->gold;
    const std::string completion = absl::StrCat("<answer>\n", sample->gold, "\n</answer>");
    line["completion"] = completion;
    line["metadata"] = sample->metadata;
    line["prompt_tokens"] = sample->prompt_tokens;
    line["filler_units"] = sample->filler_units;
    if (hf != nullptr) {
      SF_ASSIGN_OR_RETURN(std::vector<TokenId> input,
                          EncodeChat(format, *hf, {{"user", sample->prompt}}));
      std::vector<TokenId> answer = hf->Encode(completion);
      answer.push_back(end_of_turn);
      line["chat_format"] = std::string(ChatFormatName(format));
      line["input_ids"] = std::move(input);
      line["completion_ids"] = std::move(answer);
    }
    out << line.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace)
        << "\n";
    if (!out) return absl::InternalError(absl::StrCat("writing sample ", index, " failed"));
  }
  return absl::OkStatus();
}

void AddDumpOptions(CLI::App& cmd, DumpArgs& args) {
  args.request.seed = tasks::kFirstTrainingSeed;
  args.request.count = 100;
  cmd.add_option("task", args.request.task, "Task name (see 'sfctl tasks list')")->required();
  cmd.add_option("--length", args.request.length, "Target length L in tokens (template included)")
      ->required();
  cmd.add_option("--tokenizer", args.tokenizer, "A tokenizer.json file");
  cmd.add_option("--model", args.model, "A model folder holding tokenizer.json");
  cmd.add_option("--seed", args.request.seed,
                 "First sample seed; sample i uses seed + i (at least 2^32)")
      ->capture_default_str();
  cmd.add_option("--count", args.request.count, "Number of samples")->capture_default_str();
  cmd.add_option("--param,-p", args.request.params, "Task parameter name=value (repeatable)");
  cmd.add_option("--template-overhead", args.request.template_overhead,
                 "Tokens reserved for the chat template")
      ->capture_default_str();
  cmd.add_option("--answer-reserve", args.request.answer_reserve, "Tokens reserved for the answer")
      ->capture_default_str();
  cmd.add_flag("--ids", args.request.ids,
               "Also write input_ids (the prompt in the model's chat format, as workers feed "
               "it) and completion_ids (the completion and the end-of-turn token)");
  cmd.add_option("--output,-o", args.output, "Output .jsonl file, or - for stdout")->required();
}

absl::StatusOr<std::string> DumpTokenizerPath(const DumpArgs& args) {
  if (args.tokenizer.empty() == args.model.empty()) {
    return absl::InvalidArgumentError("give exactly one of --tokenizer FILE or --model DIR");
  }
  return args.tokenizer.empty() ? (std::filesystem::path(args.model) / "tokenizer.json").string()
                                : args.tokenizer;
}

absl::StatusOr<std::string> WriteDump(const DumpArgs& args, const Tokenizer& tokenizer,
                                      std::ostream& out) {
  const DumpRequest& r = args.request;
  SF_RETURN_IF_ERROR(CheckDumpSeeds(r));
  const std::string summary = absl::StrCat(
      "wrote ", r.count, " ", r.task, " samples at ", r.length, " tokens (sample seeds ", r.seed,
      "..", r.seed + static_cast<uint64_t>(r.count - 1), ", tokenizer ", tokenizer.Name(), ") to ",
      args.output == "-" ? "stdout" : args.output);
  if (args.output == "-") {
    SF_RETURN_IF_ERROR(DumpSamples(r, tokenizer, out));
    return summary;
  }
  const std::string partial = args.output + ".partial";
  {
    std::ofstream file(partial, std::ios::binary | std::ios::trunc);
    if (!file) {
      return absl::InvalidArgumentError(absl::StrCat("cannot write --output ", args.output,
                                                     ": is its folder there and writable?"));
    }
    absl::Status dumped = DumpSamples(r, tokenizer, file);
    file.close();
    if (dumped.ok() && !file) dumped = absl::InternalError(absl::StrCat("writing ", partial));
    if (!dumped.ok()) {
      std::error_code ignored;
      std::filesystem::remove(partial, ignored);
      return dumped;
    }
  }
  std::error_code ec;
  std::filesystem::rename(partial, args.output, ec);
  if (ec) return absl::InternalError(absl::StrCat("renaming ", partial, ": ", ec.message()));
  return summary;
}

}  // namespace sf::cli
