// The one interface of the nine tasks: generate a sample sized to a token budget with
// the model's own tokenizer, build its prompt, score a prediction. A sample is a pure
// function of (task, parameters, tokenizer, budget, seed + index).
#ifndef SF_TASKS_TASK_H_
#define SF_TASKS_TASK_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/job.h"
#include "common/tokenizer.h"

namespace sf::tasks {

// How many tokens the prompt text may take. The engine later wraps the prompt in the
// model's chat template (`template_overhead` tokens) and generates the answer; the
// wrapped prompt must lie in [min_fraction * target_length, target_length -
// answer_reserve] tokens (the study: [0.9 L, L], 64 tokens for the template).
struct PromptBudget {
  int64_t target_length = 0;       // L, in the model's tokens
  int64_t template_overhead = 64;  // tokens the chat template adds around the prompt
  int64_t answer_reserve = 0;      // tokens kept free for the answer inside L
  double min_fraction = 0.9;

  // Bounds on the prompt text's own token count.
  int64_t MaxPromptTokens() const;
  int64_t MinPromptTokens() const;
  // InvalidArgument when the bounds are empty or the numbers make no sense.
  absl::Status Validate() const;
};

struct Sample {
  std::string task;
  uint64_t seed = 0;
  int64_t index = 0;
  int64_t target_length = 0;
  std::string prompt;                  // the whole user message
  std::string context;                 // the context part of the prompt
  std::vector<std::string> questions;  // in the order they are asked
  // Expected answers: one per question (NIAH values, story answers, CWE words, VT
  // variables) or, for SQuAD, the accepted alternatives of the one question.
  std::vector<std::string> answers;
  std::string gold;                             // the ideal text inside <answer>...</answer>
  std::map<std::string, std::string> metadata;  // task-specific facts (keys, chapter ids...)
  int64_t prompt_tokens = 0;  // tokens of `prompt` by the tokenizer it was sized with
  int64_t filler_units = 0;   // how many filler units (lines, chapters, words) it holds
};

struct ScoreResult {
  double score = 0;      // in [0, 1]
  bool counted = true;   // false: the study leaves this sample out of the mean
  bool answered = true;  // an <answer> section was found
  std::string details;   // what was parsed and compared, for people
};

// Parameter declarations, for validation, defaults and `sfctl tasks list`.
struct ParamSpec {
  std::string name;
  ParamValue default_value;
  std::string help;
  int64_t min = 0;                   // for integers
  int64_t max = INT64_MAX;           // for integers
  std::vector<std::string> choices;  // for strings; empty = any (e.g. a path)
  bool required = false;             // no usable default (dataset paths)
};

class Task;

struct TaskInfo {
  std::string name;
  std::string summary;
  std::string metric;
  std::vector<ParamSpec> params;
  // Builds the task from resolved parameters (defaults filled in, types checked).
  std::function<absl::StatusOr<std::unique_ptr<Task>>(const ParamMap&)> create;

  // True for tasks read from a local dataset file the user points at with a required
  // `path` parameter (the QA tasks); the spec insists on it.
  bool ReadsDatasetFile() const;
};

class Task {
 public:
  virtual ~Task() = default;
  virtual const std::string& name() const = 0;

  // The sample `index` of a run seeded `seed`, sized with `tokenizer` to `budget`.
  // InvalidArgument for a bad budget; FailedPrecondition when the task cannot fill or
  // fit the budget (say, the fixed parts alone are too long, or a dataset is too small).
  virtual absl::StatusOr<Sample> Generate(const Tokenizer& tokenizer, const PromptBudget& budget,
                                          uint64_t seed, int64_t index) const = 0;

  // Scores the model's whole output against `sample`. Never fails: a malformed output
  // scores 0 (or is not counted, where the task's scoring options say so).
  virtual ScoreResult Score(const Sample& sample, absl::string_view prediction) const = 0;
};

// Sample seeds (run seed + sample index, what a sample is a function of) below this are
// evaluation's: sweeps run with small seeds (the spec's default is 0, the study's 43) and
// a few thousand samples at most. Training data (`sfctl tasks dump`) starts here, so no
// trained model has seen a sample that a sweep scores.
inline constexpr uint64_t kFirstTrainingSeed = uint64_t{1} << 32;

// Every registered task, in the study's order.
const std::vector<TaskInfo>& AllTasks();
// NotFound (listing the known names) for an unknown task.
absl::StatusOr<const TaskInfo*> FindTask(absl::string_view name);
// Fills defaults and checks `given` against the task's declarations: unknown names,
// wrong types, out-of-range integers and unknown choices are InvalidArgument errors
// that name the parameter and what is allowed.
absl::StatusOr<ParamMap> ResolveParams(const TaskInfo& info, const ParamMap& given);
// Checks one given parameter against the task's declarations as ResolveParams does:
// InvalidArgument for an unknown name (with "did you mean" when one is close), a wrong
// type, an out-of-range integer or an unknown choice, naming the parameter and what is
// allowed. For validating a spec before any job runs.
absl::Status CheckParam(const TaskInfo& info, const std::string& name, const ParamValue& value);
// ResolveParams, then the task's constructor (which may load dataset files).
absl::StatusOr<std::unique_ptr<Task>> CreateTask(absl::string_view name, const ParamMap& given);

// Parses "name=value" strings (command lines) into typed values by the task's
// declarations; the result still goes through ResolveParams. InvalidArgument for a
// missing '=', an unknown name or a value of the wrong type.
absl::StatusOr<ParamMap> ParseParamStrings(const TaskInfo& info,
                                           const std::vector<std::string>& assignments);

// Convenience for one-off use; workers create the task once and reuse it.
absl::StatusOr<Sample> GenerateSample(absl::string_view name, const ParamMap& params,
                                      const Tokenizer& tokenizer, const PromptBudget& budget,
                                      uint64_t seed, int64_t index);

// Typed reads of resolved parameters (the registry guarantees presence and type).
int64_t IntParam(const ParamMap& params, const std::string& name);
bool BoolParam(const ParamMap& params, const std::string& name);
std::string StringParam(const ParamMap& params, const std::string& name);
std::string ParamToString(const ParamValue& value);

// Mean of the counted scores (0 when none is counted), as the study aggregates.
double MeanScore(const std::vector<ScoreResult>& results);

}  // namespace sf::tasks

#endif  // SF_TASKS_TASK_H_
