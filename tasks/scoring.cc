#include "tasks/scoring.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace sf::tasks {

ParamSpec MissingAnswerParam(absl::string_view study_default) {
  return ParamSpec{"missing_answer",
                   std::string(study_default),
                   "output without <answer> tags: zero (score 0), drop (not counted), "
                   "whole_text (parse the whole output); the default is the study's",
                   0,
                   INT64_MAX,
                   {"zero", "drop", "whole_text"}};
}

ParamSpec DropEmptyOutputParam(bool study_default) {
  return ParamSpec{"drop_empty_output", study_default,
                   "leave empty outputs out of the mean (the study does for story_multihop "
                   "and story_filtering)"};
}

AnswerPolicy AnswerPolicy::FromParams(const ParamMap& params) {
  AnswerPolicy p;
  const std::string m = StringParam(params, "missing_answer");
  p.missing = m == "drop"         ? MissingAnswer::kDrop
              : m == "whole_text" ? MissingAnswer::kWholeText
                                  : MissingAnswer::kZero;
  p.drop_empty_output = BoolParam(params, "drop_empty_output");
  return p;
}

std::string AsciiLower(absl::string_view text) { return absl::AsciiStrToLower(text); }

std::optional<std::string> ExtractAnswer(absl::string_view prediction) {
  const std::string lower = AsciiLower(prediction);
  const size_t open = lower.find("<answer>");
  if (open == std::string::npos) return std::nullopt;
  const size_t start = open + 8;
  const size_t close = lower.find("</answer>", start);
  if (close == std::string::npos) return std::nullopt;
  return std::string(prediction.substr(start, close - start));
}

std::optional<std::string> AnswerToScore(absl::string_view prediction, const AnswerPolicy& policy,
                                         ScoreResult* result) {
  result->score = 0;
  if (absl::StripAsciiWhitespace(prediction).empty() && policy.drop_empty_output) {
    result->answered = false;
    result->counted = false;
    result->details = "empty output (not counted)";
    return std::nullopt;
  }
  std::optional<std::string> tagged = ExtractAnswer(prediction);
  if (tagged) return tagged;
  result->answered = false;
  switch (policy.missing) {
    case MissingAnswer::kZero:
      result->details = "no <answer> section";
      return std::nullopt;
    case MissingAnswer::kDrop:
      result->counted = false;
      result->details = "no <answer> section (not counted)";
      return std::nullopt;
    case MissingAnswer::kWholeText:
      return std::string(prediction);
  }
  return std::nullopt;
}

std::string NormalizeSpaces(absl::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

std::map<int, std::string> NumberedLines(absl::string_view text) {
  std::map<int, std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    size_t i = 0;
    while (i < line.size() && i < 6 && absl::ascii_isdigit(line[i])) ++i;
    if (i == 0 || i == line.size() || i >= 6) continue;
    const char sep = line[i];
    if (sep != '.' && sep != ':' && sep != ')') continue;
    const int number = std::stoi(std::string(line.substr(0, i)));
    absl::string_view rest = absl::StripAsciiWhitespace(line.substr(i + 1));
    if (rest.empty()) continue;
    out.emplace(number, std::string(rest));
  }
  return out;
}

double Iou(const std::set<std::string>& a, const std::set<std::string>& b, double empty_both) {
  size_t inter = 0;
  for (const std::string& x : a) inter += b.count(x);
  const size_t uni = a.size() + b.size() - inter;
  return uni == 0 ? empty_both : static_cast<double>(inter) / uni;
}

}  // namespace sf::tasks
