// Parsing helpers shared by the scorers: the <answer> section, numbered lines, set
// overlap, and the policy for outputs without an answer section (a study quirk that
// differs between tasks, so it is an explicit parameter).
#ifndef SF_TASKS_SCORING_H_
#define SF_TASKS_SCORING_H_

#include <map>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/job.h"
#include "tasks/task.h"

namespace sf::tasks {

// What a scorer does with an output that has no <answer>...</answer> section.
enum class MissingAnswer {
  kZero,       // score 0 (ruler_cwe, qa_* and story_filtering in the study)
  kDrop,       // leave the sample out of the mean (story_multihop in the study)
  kWholeText,  // parse the whole output instead (ruler_niah, ruler_vt, story_retrieval)
};

// The two scoring parameters every task declares, with the study's default for it.
ParamSpec MissingAnswerParam(absl::string_view study_default);
ParamSpec DropEmptyOutputParam(bool study_default);

struct AnswerPolicy {
  MissingAnswer missing = MissingAnswer::kZero;
  bool drop_empty_output = false;  // an empty output is left out of the mean
  static AnswerPolicy FromParams(const ParamMap& params);
};

// Text between the first "<answer>" and the next "</answer>" (tags matched without
// regard to case), or nullopt.
std::optional<std::string> ExtractAnswer(absl::string_view prediction);

// Applies `policy`: the text to score, or nullopt with `result` set (score 0, and
// counted/answered updated) when there is nothing to score.
std::optional<std::string> AnswerToScore(absl::string_view prediction, const AnswerPolicy& policy,
                                         ScoreResult* result);

std::string AsciiLower(absl::string_view text);
// Lower case, runs of whitespace collapsed to one space, trimmed.
std::string NormalizeSpaces(absl::string_view text);
// "3. foo" / "3: foo" / "3) foo" lines: number -> rest of the line (trimmed). The first
// line with a number wins.
std::map<int, std::string> NumberedLines(absl::string_view text);
// |a & b| / |a | b|; `empty_both` when both are empty.
double Iou(const std::set<std::string>& a, const std::set<std::string>& b, double empty_both);

}  // namespace sf::tasks

#endif  // SF_TASKS_SCORING_H_
