#include <fstream>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tasks/task.h"
#include "tasks/testing/fake_tokenizers.h"
#include "tasks/testing/test_data.h"

namespace sf::tasks {
namespace {

using ::sf::testing::IsOk;
using ::sf::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(Registry, ListsTheNineTasksInTheStudysOrder) {
  std::vector<std::string> names;
  for (const TaskInfo& info : AllTasks()) names.push_back(info.name);
  EXPECT_THAT(names,
              ElementsAre("ruler_niah", "ruler_vt", "ruler_cwe", "qa_squad", "qa_quality",
                          "qa_toefl", "story_retrieval", "story_multihop", "story_filtering"));
}

TEST(Registry, OnlyTheQaTasks_ReadADatasetFile) {
  std::vector<std::string> with_file;
  for (const TaskInfo& info : AllTasks()) {
    if (info.ReadsDatasetFile()) with_file.push_back(info.name);
  }
  EXPECT_THAT(with_file, ElementsAre("qa_squad", "qa_quality", "qa_toefl"));
}

TEST(Registry, UnknownTask_IsNotFoundListingTheKnownOnes) {
  EXPECT_THAT(FindTask("ruler_nih"), StatusIs(absl::StatusCode::kNotFound,
                                              HasSubstr("known tasks: ruler_niah, ruler_vt")));
}

TEST(Registry, Defaults_AreFilledIn) {
  SF_ASSERT_OK_AND_ASSIGN(const TaskInfo* info, FindTask("ruler_niah"));
  SF_ASSERT_OK_AND_ASSIGN(ParamMap p, ResolveParams(*info, {}));
  EXPECT_EQ(IntParam(p, "num_queries"), 4);
  EXPECT_EQ(StringParam(p, "missing_answer"), "whole_text");
}

TEST(Registry, BadParameters_AreInvalidArgumentNamingTheParameter) {
  EXPECT_THAT(CreateTask("ruler_niah", {{"num_querys", int64_t{3}}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown parameter 'num_querys'; known: ")));
  EXPECT_THAT(CreateTask("ruler_niah", {{"num_queries", std::string("four")}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("'num_queries' must be an integer, got a string")));
  EXPECT_THAT(
      CreateTask("ruler_vt", {{"num_hops", int64_t{0}}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'num_hops' = 0 is out of range")));
  EXPECT_THAT(CreateTask("story_multihop", {{"missing_answer", std::string("ignore")}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("is not one of zero, drop, whole_text")));
  EXPECT_THAT(CreateTask("ruler_cwe", {{"common_word_frequency", int64_t{3}},
                                       {"rare_word_frequency", int64_t{3}}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must be greater than")));
}

TEST(Registry, QaWithoutPath_SaysWhatToSet) {
  EXPECT_THAT(CreateTask("qa_squad", {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'path' is required")));
}

TEST(Registry, QaMissingFile_IsNotFoundNamingTheFile) {
  EXPECT_THAT(CreateTask("qa_toefl", {{"path", std::string("/nonexistent/toefl.jsonl")}}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/toefl.jsonl")));
}

TEST(Registry, QaMalformedFile_NamesFileLineAndExpectedShape) {
  const std::string path = ::testing::TempDir() + "/bad_quality.jsonl";
  {
    std::ofstream out(path);
    out << R"({"context": "x", "questions": ["q? A. a B. b"], "answer": ["A"]})"
        << "\n";
    out << R"({"context": "y", "questions": ["q?"]})"
        << "\n";
  }
  EXPECT_THAT(CreateTask("qa_quality", {{"path", path}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("bad_quality.jsonl:2: expected JSON lines")));
  const std::string squad = ::testing::TempDir() + "/bad_squad.json";
  {
    std::ofstream out(squad);
    out << R"({"version": "v2.0", "articles": []})";
  }
  EXPECT_THAT(CreateTask("qa_squad", {{"path", squad}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not a SQuAD v2 JSON")));
}

TEST(Registry, GenerateSample_OneCallForOneSample) {
  testing::WordPieceTokenizer tok;
  SF_ASSERT_OK_AND_ASSIGN(Sample s, GenerateSample("ruler_vt", {}, tok, {4096}, 1, 0));
  EXPECT_EQ(s.task, "ruler_vt");
  EXPECT_EQ(s.target_length, 4096);
  EXPECT_EQ(s.prompt_tokens, tok.CountTokens(s.prompt));
}

TEST(Registry, MeanScore_SkipsUncountedSamples) {
  std::vector<ScoreResult> r = {{1.0, true}, {0.0, false}, {0.5, true}};
  EXPECT_DOUBLE_EQ(MeanScore(r), 0.75);
  EXPECT_DOUBLE_EQ(MeanScore({{1.0, false}}), 0.0);
}

}  // namespace
}  // namespace sf::tasks

namespace sf::tasks {
namespace {

TEST(ParseParamStrings, TypesFollowTheDeclarations) {
  SF_ASSERT_OK_AND_ASSIGN(const TaskInfo* info, FindTask("story_multihop"));
  SF_ASSERT_OK_AND_ASSIGN(
      ParamMap p,
      ParseParamStrings(*info, {"talk_lines=2", "drop_empty_output=false", "protagonist=Mira"}));
  EXPECT_EQ(std::get<int64_t>(p["talk_lines"]), 2);
  EXPECT_EQ(std::get<bool>(p["drop_empty_output"]), false);
  EXPECT_EQ(std::get<std::string>(p["protagonist"]), "Mira");
  EXPECT_THAT(ParseParamStrings(*info, {"talk_lines=two"}),
              ::sf::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                      ::testing::HasSubstr("'talk_lines' must be an integer")));
  EXPECT_THAT(ParseParamStrings(*info, {"talk_lines"}),
              ::sf::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                      ::testing::HasSubstr("name=value")));
}

}  // namespace
}  // namespace sf::tasks
