#include "tasks/task.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <variant>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/did_you_mean.h"
#include "common/logging.h"
#include "common/status.h"
#include "tasks/task_list.h"

namespace sf::tasks {
namespace {

const char* TypeName(const ParamValue& v) {
  switch (v.index()) {
    case 0:
      return "an integer";
    case 1:
      return "a number";
    case 2:
      return "true or false";
    default:
      return "a string";
  }
}

}  // namespace

int64_t PromptBudget::MaxPromptTokens() const {
  return target_length - template_overhead - answer_reserve;
}

int64_t PromptBudget::MinPromptTokens() const {
  return static_cast<int64_t>(std::ceil(min_fraction * static_cast<double>(target_length))) -
         template_overhead;
}

absl::Status PromptBudget::Validate() const {
  if (target_length <= 0 || template_overhead < 0 || answer_reserve < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt budget: length ", target_length, ", template overhead ", template_overhead,
        " and answer reserve ", answer_reserve, " must be positive, non-negative, non-negative"));
  }
  if (!(min_fraction > 0 && min_fraction <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt budget: min_fraction ", min_fraction, " must lie in (0, 1]"));
  }
  if (MaxPromptTokens() < std::max<int64_t>(1, MinPromptTokens())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt budget: length ", target_length, " leaves no room: the prompt must have between ",
        MinPromptTokens(), " and ", MaxPromptTokens(),
        " tokens; lower the template overhead or answer reserve, or raise the length"));
  }
  return absl::OkStatus();
}

bool TaskInfo::ReadsDatasetFile() const {
  for (const ParamSpec& p : params) {
    if (p.name == "path" && p.required) return true;
  }
  return false;
}

const std::vector<TaskInfo>& AllTasks() {
  static const std::vector<TaskInfo>* const tasks = new std::vector<TaskInfo>{
      RulerNiahInfo(),      RulerVtInfo(),       RulerCweInfo(),
      QaSquadInfo(),        QaQualityInfo(),     QaToeflInfo(),
      StoryRetrievalInfo(), StoryMultihopInfo(), StoryFilteringInfo(),
  };
  return *tasks;
}

absl::StatusOr<const TaskInfo*> FindTask(absl::string_view name) {
  std::vector<std::string> names;
  for (const TaskInfo& info : AllTasks()) {
    if (info.name == name) return &info;
    names.push_back(info.name);
  }
  return absl::NotFoundError(
      absl::StrCat("unknown task '", name, "'; known tasks: ", absl::StrJoin(names, ", ")));
}

namespace {

const ParamSpec* FindParam(const TaskInfo& info, const std::string& name) {
  for (const ParamSpec& spec : info.params) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

// "; did you mean 'num_hops'?" when a declared name is a plausible typo of `name`.
std::string ParamSuggestion(const TaskInfo& info, const std::string& name) {
  std::vector<std::string> names;
  for (const ParamSpec& spec : info.params) names.push_back(spec.name);
  std::optional<std::string> close = ClosestName(name, names);
  return close.has_value() ? absl::StrCat("; did you mean '", *close, "'?") : std::string();
}

// `value` converted to the declared type (an integer where a number is declared) and
// checked against the declaration.
absl::StatusOr<ParamValue> CheckedValue(const TaskInfo& info, const ParamSpec& spec,
                                        ParamValue value) {
  if (spec.default_value.index() == 1 && value.index() == 0) {
    value = static_cast<double>(std::get<int64_t>(value));
  }
  if (value.index() != spec.default_value.index()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "task ", info.name, ": parameter '", spec.name, "' must be ", TypeName(spec.default_value),
        ", got ", TypeName(value), " (", ParamToString(value), ")"));
  }
  if (const int64_t* i = std::get_if<int64_t>(&value); i && (*i < spec.min || *i > spec.max)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "task ", info.name, ": parameter '", spec.name, "' = ", *i, " is out of range [", spec.min,
        ", ", spec.max == INT64_MAX ? std::string("inf") : absl::StrCat(spec.max), "]"));
  }
  if (const std::string* s = std::get_if<std::string>(&value); s && !spec.choices.empty()) {
    bool ok = false;
    for (const std::string& c : spec.choices) ok |= c == *s;
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat("task ", info.name, ": parameter '", spec.name,
                                                     "' = '", *s, "' is not one of ",
                                                     absl::StrJoin(spec.choices, ", ")));
    }
  }
  return value;
}

absl::Status UnknownParam(const TaskInfo& info, const std::string& name) {
  std::vector<std::string> names;
  for (const ParamSpec& spec : info.params) names.push_back(spec.name);
  return absl::InvalidArgumentError(absl::StrCat(
      "task ", info.name, ": unknown parameter '", name, "'; known: ",
      names.empty() ? "(none)" : absl::StrJoin(names, ", "), ParamSuggestion(info, name)));
}

}  // namespace

absl::Status CheckParam(const TaskInfo& info, const std::string& name, const ParamValue& value) {
  const ParamSpec* spec = FindParam(info, name);
  if (spec == nullptr) return UnknownParam(info, name);
  return CheckedValue(info, *spec, value).status();
}

absl::StatusOr<ParamMap> ResolveParams(const TaskInfo& info, const ParamMap& given) {
  ParamMap out;
  for (const auto& [name, value] : given) {
    if (FindParam(info, name) == nullptr) return UnknownParam(info, name);
  }
  for (const ParamSpec& spec : info.params) {
    auto it = given.find(spec.name);
    if (it == given.end()) {
      if (spec.required) {
        return absl::InvalidArgumentError(absl::StrCat("task ", info.name, ": parameter '",
                                                       spec.name, "' is required: ", spec.help));
      }
      out[spec.name] = spec.default_value;
      continue;
    }
    SF_ASSIGN_OR_RETURN(out[spec.name], CheckedValue(info, spec, it->second));
  }
  return out;
}

absl::StatusOr<ParamMap> ParseParamStrings(const TaskInfo& info,
                                           const std::vector<std::string>& assignments) {
  ParamMap out;
  for (const std::string& a : assignments) {
    const size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("task parameter '", a, "' must be written name=value"));
    }
    const std::string name = a.substr(0, eq);
    const std::string text = a.substr(eq + 1);
    const ParamSpec* spec = nullptr;
    for (const ParamSpec& s : info.params) {
      if (s.name == name) spec = &s;
    }
    if (spec == nullptr) {
      // ResolveParams words the error and lists the known names.
      out[name] = text;
      continue;
    }
    const std::string bad = absl::StrCat("task ", info.name, ": parameter '", name, "' must be ",
                                         TypeName(spec->default_value), ", got '", text, "'");
    switch (spec->default_value.index()) {
      case 0: {
        int64_t v;
        if (!absl::SimpleAtoi(text, &v)) return absl::InvalidArgumentError(bad);
        out[name] = v;
        break;
      }
      case 1: {
        double v;
        if (!absl::SimpleAtod(text, &v)) return absl::InvalidArgumentError(bad);
        out[name] = v;
        break;
      }
      case 2: {
        bool v;
        if (!absl::SimpleAtob(text, &v)) return absl::InvalidArgumentError(bad);
        out[name] = v;
        break;
      }
      default:
        out[name] = text;
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Task>> CreateTask(absl::string_view name, const ParamMap& given) {
  SF_ASSIGN_OR_RETURN(const TaskInfo* info, FindTask(name));
  SF_ASSIGN_OR_RETURN(ParamMap params, ResolveParams(*info, given));
  return info->create(params);
}

absl::StatusOr<Sample> GenerateSample(absl::string_view name, const ParamMap& params,
                                      const Tokenizer& tokenizer, const PromptBudget& budget,
                                      uint64_t seed, int64_t index) {
  SF_ASSIGN_OR_RETURN(std::unique_ptr<Task> task, CreateTask(name, params));
  return task->Generate(tokenizer, budget, seed, index);
}

int64_t IntParam(const ParamMap& params, const std::string& name) {
  auto it = params.find(name);
  SF_CHECK(it != params.end() && std::holds_alternative<int64_t>(it->second)) << name;
  return std::get<int64_t>(it->second);
}

bool BoolParam(const ParamMap& params, const std::string& name) {
  auto it = params.find(name);
  SF_CHECK(it != params.end() && std::holds_alternative<bool>(it->second)) << name;
  return std::get<bool>(it->second);
}

std::string StringParam(const ParamMap& params, const std::string& name) {
  auto it = params.find(name);
  SF_CHECK(it != params.end() && std::holds_alternative<std::string>(it->second)) << name;
  return std::get<std::string>(it->second);
}

std::string ParamToString(const ParamValue& value) {
  switch (value.index()) {
    case 0:
      return absl::StrCat(std::get<int64_t>(value));
    case 1:
      return absl::StrCat(std::get<double>(value));
    case 2:
      return std::get<bool>(value) ? "true" : "false";
    default:
      return std::get<std::string>(value);
  }
}

double MeanScore(const std::vector<ScoreResult>& results) {
  double sum = 0;
  int64_t n = 0;
  for (const ScoreResult& r : results) {
    if (!r.counted) continue;
    sum += r.score;
    ++n;
  }
  return n == 0 ? 0.0 : sum / n;
}

}  // namespace sf::tasks
