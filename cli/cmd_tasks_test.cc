#include "cli/cmd_tasks.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/testing/run_commands.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tasks/task.h"
#include "tasks/testing/fake_tokenizers.h"

namespace sf::cli {
namespace {

// Only the command under test is registered (and linked).
CliResult RunCli(std::vector<std::string> args, const std::string& stdin_text = "") {
  return RunCommands({AddTasksCommand}, std::move(args), stdin_text);
}

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

// Runs `sfctl tasks ...` with the test word-piece tokenizer behind any path.
CliResult RunWithFakeTokenizer(std::vector<const char*> args) {
  args.insert(args.begin(), "sfctl");
  std::istringstream in;
  std::ostringstream out, err;
  Io io{in, out, err};
  CLI::App app("test");
  int code = kExitOk;
  std::vector<std::string> opened;
  AddTasksCommandWithOpener(app, io, &code, [](const std::string& path) {
    return absl::StatusOr<std::unique_ptr<Tokenizer>>(
        std::make_unique<tasks::testing::WordPieceTokenizer>());
  });
  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::ParseError& e) {
    std::ostringstream o, e2;
    code = app.exit(e, o, e2) == 0 ? kExitOk : kExitUsage;
    out << o.str();
    err << e2.str();
  }
  return {code, out.str(), err.str()};
}

// --format json: every task with its parameters' types, defaults, ranges and choices,
// what a script needs to build a spec.
TEST(TasksCommand, ListJson_GivesEveryParameterWithItsRange) {
  CliResult r = RunCli({"tasks", "list", "--format", "json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const auto tasks = nlohmann::json::parse(r.out);
  EXPECT_EQ(tasks.size(), 9u);
  bool found = false;
  for (const auto& task : tasks) {
    if (task["name"] != "ruler_vt") continue;
    for (const auto& p : task["params"]) {
      if (p["name"] != "num_hops") continue;
      found = true;
      EXPECT_EQ(p["default"], 4);
      EXPECT_EQ(p["min"], 1);
      EXPECT_EQ(p["max"], 64);
    }
  }
  EXPECT_TRUE(found) << r.out;
}

TEST(TasksCommand, List_ShowsEveryTaskWithDefaults) {
  CliResult r = RunCli({"tasks", "list"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  for (const char* name : {"ruler_niah", "ruler_vt", "ruler_cwe", "qa_squad", "qa_quality",
                           "qa_toefl", "story_retrieval", "story_multihop", "story_filtering"}) {
    EXPECT_THAT(r.out, HasSubstr(name));
  }
  EXPECT_THAT(r.out, HasSubstr("num_queries"));
  EXPECT_THAT(r.out, HasSubstr("(required)"));
}

TEST(TasksCommand, Preview_PrintsQuestionsAnswerAndContextEnds) {
  CliResult r =
      RunWithFakeTokenizer({"tasks", "preview", "ruler_niah", "--length", "8192", "--tokenizer",
                            "tok.json", "--index", "3", "-p", "num_queries=2"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("--- questions ---"));
  EXPECT_THAT(r.out, HasSubstr("2. The answer for "));
  EXPECT_THAT(r.out, HasSubstr("characters ...]"));
  EXPECT_THAT(r.out, HasSubstr("index 3"));
  EXPECT_THAT(r.out, HasSubstr("tokenizer test-wordpiece"));
}

TEST(TasksCommand, Preview_BadParameter_IsUsageErrorWithReason) {
  CliResult r = RunWithFakeTokenizer(
      {"tasks", "preview", "ruler_vt", "--length", "4096", "--model", "/m", "-p", "num_hops=lots"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("'num_hops' must be an integer"));
  r = RunWithFakeTokenizer({"tasks", "preview", "ruler_vt", "--length", "4096"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("exactly one of --tokenizer"));
}

TEST(TasksCommand, Preview_MissingTokenizerFile_IsUsageErrorNamingIt) {
  CliResult r = RunCli({"tasks", "preview", "ruler_cwe", "--length", "4096", "--model", "/m"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("/m/tokenizer.json"));
  EXPECT_THAT(r.out, Not(HasSubstr("expected answer")));
}

// A fresh folder for a dump's output, removed with the fixture.
class TasksDump : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sf_tasks_dump_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  static std::vector<nlohmann::json> ReadLines(const std::string& path) {
    std::ifstream in(path);
    std::vector<nlohmann::json> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }
  static std::string ZooTokenizer() {
    const char* root = std::getenv("SF_SOURCE_DIR");
    return std::string(root != nullptr ? root : ".") +
           "/tests/data/tokenizer/zoo_bpe_512/tokenizer.json";
  }

  std::filesystem::path dir_;
};

TEST_F(TasksDump, WritesOneJsonLinePerSampleWithTrainingSeeds) {
  const std::string out = Path("niah.jsonl");
  CliResult r =
      RunWithFakeTokenizer({"tasks", "dump", "ruler_niah", "--length", "2048", "--tokenizer",
                            "tok.json", "--count", "3", "-p", "num_queries=2", "-o", out.c_str()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("wrote 3 ruler_niah samples at 2048 tokens (sample seeds "
                               "4294967296..4294967298"));
  const std::vector<nlohmann::json> lines = ReadLines(out);
  ASSERT_THAT(lines, SizeIs(3));
  for (int i = 0; i < 3; ++i) {
    const nlohmann::json& s = lines[static_cast<size_t>(i)];
    EXPECT_EQ(s["task"], "ruler_niah");
    EXPECT_EQ(s["length"], 2048);
    EXPECT_EQ(s["index"], i);
    EXPECT_EQ(s["sample_seed"].get<uint64_t>(), tasks::kFirstTrainingSeed + i);
    EXPECT_EQ(s["params"]["num_queries"], "2");
    EXPECT_EQ(s["tokenizer"], "test-wordpiece");
    ASSERT_THAT(s["answers"], SizeIs(2));
    // The completion is what the prompt asks for: the gold answer between the tags, and
    // each expected value is in it and in the prompt's context.
    const std::string completion = s["completion"];
    EXPECT_EQ(completion, "<answer>\n" + s["gold"].get<std::string>() + "\n</answer>");
    for (const auto& answer : s["answers"]) {
      EXPECT_THAT(completion, HasSubstr(answer.get<std::string>()));
      EXPECT_THAT(s["prompt"].get<std::string>(), HasSubstr(answer.get<std::string>()));
    }
    EXPECT_LE(s["prompt_tokens"].get<int64_t>(), 2048 - 64);
    EXPECT_FALSE(s.contains("input_ids"));
  }
  EXPECT_NE(lines[0]["prompt"], lines[1]["prompt"]);
}

TEST_F(TasksDump, SameArgumentsGiveTheSameBytes) {
  const std::vector<std::string> outs = {Path("a.jsonl"), Path("b.jsonl")};
  for (const std::string& out : outs) {
    CliResult r = RunWithFakeTokenizer({"tasks", "dump", "ruler_vt", "--length", "2048",
                                        "--tokenizer", "tok.json", "--count", "2", "--seed",
                                        "5000000000", "-o", out.c_str()});
    ASSERT_EQ(r.code, kExitOk) << r.err;
  }
  std::ifstream a(outs[0]), b(outs[1]);
  std::stringstream sa, sb;
  sa << a.rdbuf();
  sb << b.rdbuf();
  EXPECT_FALSE(sa.str().empty());
  EXPECT_EQ(sa.str(), sb.str());
}

TEST_F(TasksDump, EvaluationSeeds_AreRefusedAndNothingIsWritten) {
  const std::string out = Path("eval.jsonl");
  for (const char* seed : {"0", "43", "4294967295"}) {
    CliResult r =
        RunWithFakeTokenizer({"tasks", "dump", "ruler_niah", "--length", "2048", "--tokenizer",
                              "tok.json", "--seed", seed, "-o", out.c_str()});
    EXPECT_EQ(r.code, kExitUsage) << seed;
    EXPECT_THAT(r.err, HasSubstr("reserved for evaluation"));
    EXPECT_THAT(r.err, HasSubstr("--seed 4294967296 or above"));
  }
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST_F(TasksDump, DatasetTasksAndOverflow_AreRefused) {
  CliResult r =
      RunWithFakeTokenizer({"tasks", "dump", "qa_squad", "--length", "8192", "--tokenizer",
                            "tok.json", "-p", "path=x.json", "-o", Path("qa.jsonl").c_str()});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("dataset file"));
  r = RunWithFakeTokenizer({"tasks", "dump", "ruler_niah", "--length", "2048", "--tokenizer",
                            "tok.json", "--seed", "18446744073709551615", "--count", "2", "-o",
                            Path("o.jsonl").c_str()});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("passes 2^64"));
}

TEST_F(TasksDump, FailedGeneration_LeavesNoFile) {
  // Story prompts need about 3K tokens of fixed text: 1024 cannot hold them.
  const std::string out = Path("story.jsonl");
  CliResult r = RunWithFakeTokenizer({"tasks", "dump", "story_retrieval", "--length", "1024",
                                      "--tokenizer", "tok.json", "-o", out.c_str()});
  EXPECT_EQ(r.code, kExitUsage) << r.err;
  EXPECT_THAT(r.err, HasSubstr("story_retrieval sample 0"));
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_FALSE(std::filesystem::exists(out + ".partial"));
}

TEST_F(TasksDump, Ids_AreTheChatPromptAndTheCompletionWithEndOfTurn) {
  const std::string out = Path("ids.jsonl");
  const std::string tok = ZooTokenizer();
  CliResult r = RunCli({"tasks", "dump", "ruler_niah", "--length", "2048", "--tokenizer", tok,
                        "--count", "1", "--ids", "-p", "num_queries=1", "-o", out});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const std::vector<nlohmann::json> lines = ReadLines(out);
  ASSERT_THAT(lines, SizeIs(1));
  const nlohmann::json& s = lines[0];
  EXPECT_EQ(s["chat_format"], "chatml");
  const std::vector<int> input = s["input_ids"];
  const std::vector<int> completion = s["completion_ids"];
  // ChatML with the zoo tokenizer: <|im_start|>=510 first, "assistant\n" last, and the
  // completion ends with <|im_end|>=511, the model's end-of-turn (and EOS) token.
  ASSERT_FALSE(input.empty());
  EXPECT_EQ(input.front(), 510);
  EXPECT_EQ(completion.back(), 511);
  EXPECT_LE(input.size(), 2048u);
  EXPECT_GE(input.size(), 1800u);
}

TEST_F(TasksDump, Stdout_CarriesTheSamplesAndStderrTheSummary) {
  CliResult r = RunWithFakeTokenizer({"tasks", "dump", "story_multihop", "--length", "4096",
                                      "--tokenizer", "tok.json", "--count", "1", "-o", "-"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["task"], "story_multihop");
  EXPECT_THAT(r.err, HasSubstr("wrote 1 story_multihop samples"));
}

}  // namespace
}  // namespace sf::cli
