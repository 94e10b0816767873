#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tasks/task.h"
#include "tasks/testing/fake_tokenizers.h"
#include "tasks/testing/test_data.h"

namespace sf::tasks {
namespace {

using ::sf::testing::StatusIs;
using ::testing::HasSubstr;
using testing::TaskDataPath;
using testing::WordPieceTokenizer;

std::unique_ptr<Task> Make(const std::string& name, const std::string& file, ParamMap p = {}) {
  p["path"] = TaskDataPath(file);
  auto task = CreateTask(name, p);
  EXPECT_TRUE(task.ok()) << task.status();
  return *std::move(task);
}

std::string Tagged(const std::string& s) {
  return "Document 2 says so.\n<answer>" + s + "</answer>";
}

// The n-th "Document i:" block of a context.
std::string DocumentText(const Sample& s, int n) {
  const std::string head = absl::StrCat("Document ", n, ":\n");
  const size_t at = s.context.find(head);
  if (at == std::string::npos) return "";
  const size_t start = at + head.size();
  const size_t end = s.context.find("\n\nDocument ", start);
  return s.context.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// The tiny datasets hold a few hundred tokens, so these tests use short lengths; the
// length tests fill 128K from a generated dataset.
TEST(QaSquad, GoldDocumentWhereTheQuestionSays_SameQuestionAtEveryLength) {
  WordPieceTokenizer tok;
  auto task = Make("qa_squad", "squad_tiny.json");
  for (int64_t index = 0; index < 8; ++index) {
    SF_ASSERT_OK_AND_ASSIGN(Sample small, task->Generate(tok, {450, 16}, 1, index));
    SF_ASSERT_OK_AND_ASSIGN(Sample large, task->Generate(tok, {600, 16}, 1, index));
    EXPECT_EQ(small.metadata.at("dataset_item"), large.metadata.at("dataset_item"));
    EXPECT_EQ(small.answers, large.answers);
    const int gold = std::stoi(large.metadata.at("gold_document"));
    EXPECT_NE(large.questions[0].find(absl::StrCat("document ", gold, ":")), std::string::npos);
    // The gold document is whole and holds an accepted answer.
    bool found = false;
    for (const std::string& a : large.answers) {
      found |= DocumentText(large, gold).find(a) != std::string::npos;
    }
    EXPECT_TRUE(found) << large.questions[0];
    EXPECT_GT(std::stoi(large.metadata.at("documents")), 1);
  }
}

TEST(QaSquad, SkipsUnanswerableAndDuplicateQuestions) {
  WordPieceTokenizer tok;
  auto task = Make("qa_squad", "squad_tiny.json");
  // 11 questions in the file, one unanswerable and one duplicate: 9 usable.
  SF_EXPECT_OK(task->Generate(tok, {600, 16}, 1, 8).status());
  EXPECT_THAT(task->Generate(tok, {600, 16}, 1, 9),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("only 9 questions")));
}

TEST(QaSquad, TokenF1_StudyAndOfficialVariants) {
  WordPieceTokenizer tok;
  auto study = Make("qa_squad", "squad_tiny.json");
  auto squad = Make("qa_squad", "squad_tiny.json", {{"f1", std::string("squad")}});
  Sample s;
  s.answers = {"barley and potatoes"};
  EXPECT_DOUBLE_EQ(study->Score(s, Tagged("Barley and potatoes.")).score, 1.0);
  // Study: "and" is dropped, sets of tokens; {barley} vs {barley, potatoes}: 2/3 -> 0.67.
  EXPECT_DOUBLE_EQ(study->Score(s, Tagged("barley")).score, 0.67);
  // Official: bags, "and" kept: P = 1, R = 1/3 -> 0.5.
  EXPECT_DOUBLE_EQ(squad->Score(s, Tagged("barley")).score, 0.5);
  EXPECT_DOUBLE_EQ(study->Score(s, Tagged("wheat")).score, 0.0);
  EXPECT_DOUBLE_EQ(study->Score(s, "barley and potatoes").score, 0.0);  // no tags
  s.answers = {"two", "two men"};
  EXPECT_DOUBLE_EQ(study->Score(s, Tagged("two men")).score, 1.0);
}

TEST(QaQuality, BothFileShapes_LettersAsExpected) {
  WordPieceTokenizer tok;
  auto task = Make("qa_quality", "quality_tiny.jsonl");
  std::set<std::string> golds;
  for (int64_t index = 0; index < 6; ++index) {
    SF_ASSERT_OK_AND_ASSIGN(Sample s, task->Generate(tok, {480, 16}, 5, index));
    golds.insert(s.answers[0]);
    EXPECT_DOUBLE_EQ(task->Score(s, Tagged(s.answers[0])).score, 1.0);
  }
  // L-Eval lines (B, C, C, AC) and QuALITY's own release (gold_label 3 -> C, 4 -> D).
  EXPECT_EQ(golds, (std::set<std::string>{"B", "C", "AC", "D"}));
}

TEST(QaToefl, McqScoring_StudyAndStrict) {
  WordPieceTokenizer tok;
  auto study = Make("qa_toefl", "toefl_tiny.jsonl");
  auto strict = Make("qa_toefl", "toefl_tiny.jsonl", {{"mcq_parse", std::string("strict")}});
  SF_ASSERT_OK_AND_ASSIGN(Sample s, study->Generate(tok, {420, 16}, 6, 0));
  EXPECT_EQ(s.questions[0].find("Question: "), std::string::npos);  // prefix removed
  Sample ac = s;
  ac.answers = {"AC"};
  EXPECT_DOUBLE_EQ(study->Score(ac, Tagged("C, A")).score, 1.0);
  EXPECT_DOUBLE_EQ(strict->Score(ac, Tagged("(A) (C)")).score, 1.0);
  EXPECT_DOUBLE_EQ(study->Score(ac, Tagged("A")).score, 0.0);  // partly right is wrong
  // The study reads every letter A-D: "B because" adds B, C, A... and fails; strict too.
  Sample b = s;
  b.answers = {"B"};
  EXPECT_DOUBLE_EQ(study->Score(b, Tagged("B because")).score, 0.0);
  EXPECT_DOUBLE_EQ(strict->Score(b, Tagged("B because")).score, 0.0);
  EXPECT_DOUBLE_EQ(study->Score(b, Tagged("Question 2. B")).score, 1.0);
  EXPECT_DOUBLE_EQ(study->Score(b, "B").score, 0.0);  // no tags
}

}  // namespace
}  // namespace sf::tasks
