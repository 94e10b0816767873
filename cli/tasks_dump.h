// `sfctl tasks dump`: training samples from the project's own task generators, written
// as JSON Lines. Sample seeds (seed + index) below tasks::kFirstTrainingSeed belong to
// evaluation and are refused, so a dump never holds a sample a sweep scores.
#ifndef SF_CLI_TASKS_DUMP_H_
#define SF_CLI_TASKS_DUMP_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/tokenizer.h"

namespace sf::cli {

struct DumpRequest {
  std::string task;
  int64_t length = 0;               // target length L in tokens, chat template included
  uint64_t seed = 0;                // sample i has sample seed seed + i
  int64_t count = 0;                // samples 0 .. count-1
  std::vector<std::string> params;  // task parameters, "name=value"
  int64_t template_overhead = 64;
  int64_t answer_reserve = 0;
  // Also write `input_ids` (the prompt in the model's chat format, as workers feed it) and
  // `completion_ids` (the completion, then the format's end-of-turn token). Needs a
  // tokenizer.json tokenizer (HfTokenizer).
  bool ids = false;
};

// InvalidArgument when the seed range overlaps the evaluation seeds, wraps around, or the
// task reads a dataset file (its questions are the evaluation's, whatever the seed).
absl::Status CheckDumpSeeds(const DumpRequest& request);

// Writes one JSON object per sample to `out`: task, length, seed, index, sample_seed,
// params, tokenizer, prompt, questions, answers, gold, completion ("<answer>\n" gold
// "\n</answer>"), metadata, prompt_tokens, filler_units, and the ids when asked.
// Errors from CheckDumpSeeds, the task registry and generation (with the index).
absl::Status DumpSamples(const DumpRequest& request, const Tokenizer& tokenizer, std::ostream& out);

// The command line of a dump, shared by `sfctl tasks dump` and sf-tasks-dump.
struct DumpArgs {
  DumpRequest request;
  std::string tokenizer;  // a tokenizer.json ...
  std::string model;      // ... or a model folder holding one
  std::string output;     // a .jsonl path, or "-" for `out`
};

// Registers the dump's arguments and options on `cmd` (defaults: --seed 2^32,
// --count 100); `args` must outlive the parse.
void AddDumpOptions(CLI::App& cmd, DumpArgs& args);

// The tokenizer.json that --tokenizer or --model names. InvalidArgument unless exactly
// one is given.
absl::StatusOr<std::string> DumpTokenizerPath(const DumpArgs& args);

// DumpSamples into args.output (through a ".partial" file renamed at the end, so a
// failed dump leaves no file that looks complete) or into `out` for "-". Returns the
// one-line summary ("wrote N ruler_niah samples ...") to print.
absl::StatusOr<std::string> WriteDump(const DumpArgs& args, const Tokenizer& tokenizer,
                                      std::ostream& out);

}  // namespace sf::cli

#endif  // SF_CLI_TASKS_DUMP_H_
