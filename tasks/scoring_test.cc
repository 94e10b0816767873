#include "tasks/scoring.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf::tasks {
namespace {

TEST(ExtractAnswer, FirstTaggedSection_AnyCase) {
  EXPECT_EQ(ExtractAnswer("think... <ANSWER>\nB\n</Answer> <answer>C</answer>"), "\nB\n");
  EXPECT_EQ(ExtractAnswer("<answer>unclosed"), std::nullopt);
  EXPECT_EQ(ExtractAnswer("no tags"), std::nullopt);
}

TEST(AnswerToScore, PoliciesForMissingTags) {
  ScoreResult r;
  EXPECT_EQ(AnswerToScore("plain", {MissingAnswer::kWholeText, false}, &r), "plain");
  EXPECT_FALSE(r.answered);
  EXPECT_TRUE(r.counted);
  r = {};
  EXPECT_EQ(AnswerToScore("plain", {MissingAnswer::kZero, false}, &r), std::nullopt);
  EXPECT_TRUE(r.counted);
  r = {};
  EXPECT_EQ(AnswerToScore("plain", {MissingAnswer::kDrop, false}, &r), std::nullopt);
  EXPECT_FALSE(r.counted);
  r = {};
  EXPECT_EQ(AnswerToScore("  \n", {MissingAnswer::kZero, true}, &r), std::nullopt);
  EXPECT_FALSE(r.counted);
}

TEST(NumberedLines, ParsesSeparatorsAndKeepsFirst) {
  std::map<int, std::string> m =
      NumberedLines(" 1. alpha \n2) beta\n3: gamma\n1. again\n4 nope\n5.");
  EXPECT_EQ(m.size(), 3u);
  EXPECT_EQ(m[1], "alpha");
  EXPECT_EQ(m[2], "beta");
  EXPECT_EQ(m[3], "gamma");
}

TEST(Iou, EmptyAndOverlap) {
  EXPECT_DOUBLE_EQ(Iou({"a", "b"}, {"b", "c"}, 0), 1.0 / 3);
  EXPECT_DOUBLE_EQ(Iou({}, {}, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(Iou({}, {}, 0.0), 0.0);
}

TEST(NormalizeSpaces, LowersAndCollapses) { EXPECT_EQ(NormalizeSpaces("  A \n b\tC "), "a b c"); }

}  // namespace
}  // namespace sf::tasks
