#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
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

std::string Tagged(const std::string& s) { return "Because...\n<answer>\n" + s + "\n</answer>"; }

// Chapter id -> text, and the purchases recorded in the metadata.
std::map<int, std::string> Chapters(const Sample& s) {
  std::map<int, std::string> out;
  for (absl::string_view block : absl::StrSplit(s.context, "\n\n")) {
    if (!absl::StartsWith(block, "Chapter ")) continue;
    const size_t colon = block.find(':');
    int id = 0;
    EXPECT_TRUE(absl::SimpleAtoi(block.substr(8, colon - 8), &id));
    out[id] = std::string(block);
  }
  return out;
}

std::map<int, std::string> Purchases(const Sample& s) {
  std::map<int, std::string> out;
  for (absl::string_view part : absl::StrSplit(s.metadata.at("purchases"), ';')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, '=');
    out[std::stoi(kv.first)] = kv.second;
  }
  return out;
}

TEST(Story, ChaptersHaveUniqueTownAndTraderAndItems) {
  WordPieceTokenizer tok;
  SF_ASSERT_OK_AND_ASSIGN(Sample s, Make("story_retrieval")->Generate(tok, {32768}, 7, 0));
  std::map<int, std::string> chapters = Chapters(s);
  ASSERT_EQ(static_cast<int64_t>(chapters.size()), std::stoll(s.metadata.at("chapters")));
  ASSERT_GE(chapters.size(), 50u);
  std::set<std::string> items;
  for (const auto& [id, item] : Purchases(s)) {
    ASSERT_FALSE(item.empty());
    EXPECT_TRUE(items.insert(item).second) << item;
    EXPECT_NE(chapters[id].find("the " + item), std::string::npos) << id;
  }
  // Every asked answer appears in its chapter, and a town or trader in no other chapter.
  const std::vector<std::string> asked = absl::StrSplit(s.metadata.at("asked"), ' ');
  ASSERT_EQ(asked.size(), 16u);
  for (size_t q = 0; q < asked.size(); ++q) {
    std::pair<std::string, std::string> ck = absl::StrSplit(asked[q], ':');
    const int id = std::stoi(ck.first);
    EXPECT_NE(chapters[id].find(s.answers[q]), std::string::npos);
    if (ck.second != "item") {
      for (const auto& [other, text] : chapters) {
        if (other != id) {
          EXPECT_EQ(text.find(s.answers[q]), std::string::npos) << s.answers[q];
        }
      }
    }
  }
}

TEST(StoryRetrieval, Scores_RightPartlyWrongMissing) {
  WordPieceTokenizer tok;
  auto task = Make("story_retrieval", {{"num_queries", int64_t{4}}});
  SF_ASSERT_OK_AND_ASSIGN(Sample s, task->Generate(tok, {8192}, 8, 3));
  ASSERT_EQ(s.answers.size(), 4u);
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged(s.gold)).score, 1.0);
  const std::string half =
      absl::StrCat("1. The ", s.answers[0], ".\n2: ", s.answers[1], "\n3. nowhere\n");
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged(half)).score, 0.5);
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged("I cannot tell")).score, 0.0);
  EXPECT_DOUBLE_EQ(task->Score(s, s.gold).score, 1.0);  // whole text parsed, as in the study
}

TEST(StoryMultihop, AnswerIsThePreviousPurchase) {
  ChunkTokenizer tok;
  auto task = Make("story_multihop");
  for (int64_t index = 0; index < 5; ++index) {
    SF_ASSERT_OK_AND_ASSIGN(Sample s, task->Generate(tok, {16384}, 9, index));
    const int target = std::stoi(s.metadata.at("target_chapter"));
    const int answer = std::stoi(s.metadata.at("answer_chapter"));
    EXPECT_EQ(answer, target - 1);
    std::map<int, std::string> bought = Purchases(s);
    EXPECT_EQ(bought[answer], s.answers[0]);
    EXPECT_NE(s.questions[0].find(bought[target]), std::string::npos);
  }
}

TEST(StoryMultihop, Scores_WithTheStudysDroppedSamples) {
  WordPieceTokenizer tok;
  auto task = Make("story_multihop");
  SF_ASSERT_OK_AND_ASSIGN(Sample s, task->Generate(tok, {8192}, 10, 0));
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged("The " + s.answers[0])).score, 1.0);
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged("iron key")).score, 0.0);
  ScoreResult missing = task->Score(s, s.answers[0]);
  EXPECT_FALSE(missing.counted);
  EXPECT_FALSE(task->Score(s, "").counted);
  EXPECT_FALSE(task->Score(s, Tagged("")).counted);
  auto strict = Make("story_multihop",
                     {{"missing_answer", std::string("zero")}, {"drop_empty_output", false}});
  EXPECT_TRUE(strict->Score(s, s.answers[0]).counted);
  EXPECT_DOUBLE_EQ(strict->Score(s, s.answers[0]).score, 0.0);
}

TEST(StoryFiltering, ChosenChaptersBuyNothingOthersBuyOnce) {
  WordPieceTokenizer tok;
  auto task = Make("story_filtering");
  SF_ASSERT_OK_AND_ASSIGN(Sample s, task->Generate(tok, {16384}, 11, 2));
  ASSERT_EQ(s.answers.size(), 3u);
  std::set<int> none;
  for (const std::string& a : s.answers) none.insert(std::stoi(a));
  for (const auto& [id, item] : Purchases(s)) EXPECT_EQ(item.empty(), none.contains(id)) << id;
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged(s.gold)).score, 1.0);
  std::vector<std::string> refs;
  for (const std::string& a : s.answers) refs.push_back("Chapter " + a);
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged(absl::StrJoin(refs, " and "))).score, 1.0);
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged(s.answers[0] + ", " + s.answers[1])).score, 2.0 / 3);
  EXPECT_DOUBLE_EQ(task->Score(s, Tagged("99999")).score, 0.0);
  EXPECT_DOUBLE_EQ(task->Score(s, s.gold).score, 0.0);  // no tags
  EXPECT_FALSE(task->Score(s, "   ").counted);          // empty output: dropped
}

TEST(Story, SameInputs_SameBytes) {
  ChunkTokenizer tok;
  for (const char* name : {"story_retrieval", "story_multihop", "story_filtering"}) {
    SF_ASSERT_OK_AND_ASSIGN(Sample a, Make(name)->Generate(tok, {8192}, 12, 1));
    SF_ASSERT_OK_AND_ASSIGN(Sample b, Make(name)->Generate(tok, {8192}, 12, 1));
    EXPECT_EQ(a.prompt, b.prompt) << name;
    EXPECT_EQ(a.gold, b.gold) << name;
  }
}

}  // namespace
}  // namespace sf::tasks
