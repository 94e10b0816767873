#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/std_regex.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tasks/task.h"
#include "tasks/testing/fake_tokenizers.h"

namespace sf::tasks {
namespace {

using testing::ChunkTokenizer;
using testing::WordPieceTokenizer;

std::unique_ptr<Task> Make(const std::string& name, const ParamMap& p = {}) {
  auto task = CreateTask(name, p);
  EXPECT_TRUE(task.ok()) << task.status();
  return *std::move(task);
}

std::string Tagged(const std::string& s) {
  return "Reasoning here.\n<answer>\n" + s + "\n</answer>";
}

int Occurrences(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

TEST(RulerNiah, SameInputs_SameBytes_OtherIndex_OtherSample) {
  WordPieceTokenizer tok;
  auto task = Make("ruler_niah");
  SF_ASSERT_OK_AND_ASSIGN(Sample a, task->Generate(tok, {8192}, 43, 5));
  SF_ASSERT_OK_AND_ASSIGN(Sample b, Make("ruler_niah")->Generate(tok, {8192}, 43, 5));
  SF_ASSERT_OK_AND_ASSIGN(Sample c, task->Generate(tok, {8192}, 43, 6));
  EXPECT_EQ(a.prompt, b.prompt);
  EXPECT_EQ(a.gold, b.gold);
  EXPECT_NE(a.prompt, c.prompt);
  // seed + index is what matters, as in the study.
  SF_ASSERT_OK_AND_ASSIGN(Sample d, task->Generate(tok, {8192}, 44, 4));
  EXPECT_EQ(a.prompt, d.prompt);
}

TEST(RulerNiah, NeedlesOnceEach_DistractorsNeverCollide) {
  ChunkTokenizer tok;
  SF_ASSERT_OK_AND_ASSIGN(Sample s, Make("ruler_niah")->Generate(tok, {16384}, 1, 0));
  const std::vector<std::string> keys = absl::StrSplit(s.metadata.at("keys"), ' ');
  ASSERT_EQ(keys.size(), 4u);
  ASSERT_EQ(s.answers.size(), 4u);
  std::regex line("The value for key ([a-z0-9-]+) is: ([a-z0-9-]+)\\.");
  std::map<std::string, std::string> kv;
  std::set<std::string> values;
  int lines = 0;
  for (auto it = std::sregex_iterator(s.context.begin(), s.context.end(), line);
       it != std::sregex_iterator(); ++it) {
    ++lines;
    EXPECT_TRUE(kv.emplace((*it)[1], (*it)[2]).second) << "key repeated: " << (*it)[1];
    EXPECT_TRUE(values.insert((*it)[2]).second) << "value repeated: " << (*it)[2];
  }
  EXPECT_EQ(lines, s.filler_units + 4);
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(kv[keys[i]], s.answers[i]);
    EXPECT_EQ(kv.count(s.answers[i]), 0u) << "a needle value is also a key";
    EXPECT_EQ(Occurrences(s.context, s.answers[i]), 1);
    // Keys are asked before and after the context.
    EXPECT_EQ(Occurrences(s.prompt, keys[i]), 3);
  }
}

TEST(RulerNiah, Scores_RightPartlyWrongMalformedMissing) {
  WordPieceTokenizer tok;
  auto task = Make("ruler_niah");
  SF_ASSERT_OK_AND_ASSIGN(Sample s, task->Generate(tok, {4096}, 2, 0));
  const std::vector<std::string> keys = absl::StrSplit(s.metadata.at("keys"), ' ');
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged(s.gold)).score, 1.0);
  std::string half = absl::StrCat(
      "1. The answer for ", keys[0], " is: ", s.answers[0], "\n2. The answer for ", keys[1], " is ",
      s.answers[1], "\n3. The answer for ", keys[2], " is wrong-value.\n4. I do not know");
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged(half)).score, 0.5);
  // Answers in the wrong order do not count (the study matches by position).
  std::string swapped = absl::StrCat("1. The answer for ", keys[1], " is ", s.answers[1], ".");
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged(swapped)).score, 0.0);
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged("all of them")).score, 0.0);
  // Study default: without tags the whole output is parsed.
  EXPECT_DOUBLE_EQ(task->Score(s, s.gold).score, 1.0);
  auto strict = Make("ruler_niah", {{"missing_answer", std::string("zero")}});
  ScoreResult r = strict->Score(s, s.gold);
  EXPECT_DOUBLE_EQ(r.score, 0.0);
  EXPECT_FALSE(r.answered);
}

TEST(RulerVt, ChainPresentOnce_ScoredByIou) {
  WordPieceTokenizer tok;
  auto task = Make("ruler_vt");
  SF_ASSERT_OK_AND_ASSIGN(Sample s, task->Generate(tok, {8192}, 3, 1));
  ASSERT_EQ(s.answers.size(), 5u);  // num_hops + 1
  const std::string value = s.metadata.at("target_value");
  EXPECT_EQ(Occurrences(s.context, absl::StrCat("VAR ", s.answers[0], " = ", value, ".")), 1);
  EXPECT_EQ(Occurrences(s.context, absl::StrCat("= ", value)), 1);
  for (size_t i = 1; i < s.answers.size(); ++i) {
    EXPECT_EQ(Occurrences(s.context,
                          absl::StrCat("VAR ", s.answers[i], " = VAR ", s.answers[i - 1], ".")),
              1);
  }
  // 8 chains of 5 statements.
  EXPECT_EQ(Occurrences(s.context, "VAR "), 8 * 5 + 8 * 4);
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged(s.gold)).score, 1.0);
  const std::string three = absl::StrCat("VAR ", s.answers[0], " ", s.answers[1], " ",
                                         absl::AsciiStrToLower(s.answers[2]));
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged(three)).score, 3.0 / 5);
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged(three + " QQQQQ")).score, 3.0 / 6);
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged("none")).score, 0.0);
}

TEST(RulerCwe, FrequenciesExact_ScoredByIou) {
  ChunkTokenizer tok;
  auto task = Make("ruler_cwe");
  SF_ASSERT_OK_AND_ASSIGN(Sample s, task->Generate(tok, {8192}, 4, 0));
  std::map<std::string, int> counts;
  int expected_number = 1;
  for (absl::string_view line : absl::StrSplit(s.context, '\n')) {
    std::pair<std::string, std::string> parts = absl::StrSplit(line, ". ");
    EXPECT_EQ(parts.first, absl::StrCat(expected_number++));
    ++counts[parts.second];
  }
  ASSERT_EQ(s.answers.size(), 10u);
  for (const std::string& w : s.answers) EXPECT_EQ(counts[w], 30) << w;
  EXPECT_EQ(static_cast<int64_t>(counts.size()), 10 + s.filler_units);
  for (const auto& [w, c] : counts) EXPECT_TRUE(c == 30 || c == 3) << w << " " << c;
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged(s.gold)).score, 1.0);
  std::string five;
  for (int i = 0; i < 5; ++i) absl::StrAppend(&five, i + 1, ". ", s.answers[i], "\n");
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged(five)).score, 0.5);
  EXPECT_DOUBLE_EQ(task->Score(s, s.gold).score, 0.0);  // no tags: 0, as in the study
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged(absl::StrJoin(s.answers, ", "))).score, 0.0);
}

}  // namespace
}  // namespace sf::tasks
