#include "cli/cmd_tasks.h"

#include <sstream>
#include <vector>

#include "cli/testing/run_commands.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tasks/testing/fake_tokenizers.h"

namespace sf::cli {
namespace {

// Only the command under test is registered (and linked).
CliResult RunCli(std::vector<std::string> args, const std::string& stdin_text = "") {
  return RunCommands({AddTasksCommand}, std::move(args), stdin_text);
}

using ::testing::HasSubstr;
using ::testing::Not;

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

}  // namespace
}  // namespace sf::cli
