#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/testing/run_commands.h"
#include "common/testing/spec_corpus.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace sf::cli {
namespace {

// Only the command under test is registered (and linked).
CliResult RunCli(std::vector<std::string> args, const std::string& stdin_text = "") {
  return RunCommands({AddValidateCommand}, std::move(args), stdin_text);
}

using ::testing::HasSubstr;

class ValidateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = sf::testing::FreshTestDir();
    sf::testing::WriteCorpusWorld(dir_);
  }
  std::string Write(const std::string& name, const std::string& text) {
    sf::testing::WriteFile(dir_ / name, text);
    return (dir_ / name).string();
  }
  std::filesystem::path dir_;
};

TEST_F(ValidateTest, Quickstart_PrintsAxesAndJobCount) {
  // The quickstart names the model zoo, so it resolves against the repository root.
  const std::string spec = (sf::testing::SourceDir() / "examples/quickstart.yaml").string();
  CliResult r = RunCli({"validate", spec, "--base-dir", sf::testing::SourceDir().string()});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("sweep 'quickstart' is valid"));
  EXPECT_THAT(r.out, HasSubstr("models                  4  zoo-xs, zoo-s, zoo-m, zoo-l"));
  EXPECT_THAT(r.out, HasSubstr("sequence_lengths        2  1024, 2048"));
  EXPECT_THAT(r.out,
              HasSubstr("methods                 5  dense 1, vertical_slash 2 (compression 2)"));
  EXPECT_THAT(r.out, HasSubstr("quest 2 (compression 2)"));
  EXPECT_THAT(r.out, HasSubstr("tasks                   2  ruler_niah 1, ruler_niah 1"));
  EXPECT_THAT(r.out, HasSubstr("jobs                   80  (0 duplicates removed"));
  EXPECT_THAT(r.out, HasSubstr("largest memory"));
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST_F(ValidateTest, LongAxes_AbbreviatedAndTaskListsCounted) {
  const std::string spec = Write("s.yaml", R"(models: [{name: m, path: models/tiny-llama}]
sequence_lengths: [512]
methods: [dense]
tasks: [{name: ruler_niah, samples: 2, num_queries: [1, 2, 3]}]
seeds: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
)");
  CliResult r = RunCli({"validate", spec, "--base-dir", dir_.string()});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("tasks                   3  ruler_niah 3 (num_queries 3)"));
  EXPECT_THAT(r.out, HasSubstr("seeds                  10  1, 2, 3, 4, 5, 6, 7, 8, ... (2 more)"));
  EXPECT_THAT(r.out, HasSubstr("jobs                   30"));
}

TEST_F(ValidateTest, List_PrintsOneLinePerJob) {
  const std::string spec = Write("s.yaml", R"(models: [{name: m, path: models/tiny-llama}]
sequence_lengths: [512, 1024]
methods: [dense, {name: snapkv, compression: 4, keep_last: 64}]
tasks: [ruler_niah]
)");
  CliResult r = RunCli({"validate", spec, "--base-dir", dir_.string(), "--list"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("snapkv@4"));
  int job_lines = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    // Job lines start with the key's first 16 hex digits.
    if (line.size() > 17 && line.find_first_not_of("0123456789abcdef") == 16) ++job_lines;
  }
  EXPECT_EQ(job_lines, 4);
}

TEST_F(ValidateTest, Errors_PrintedLocatedAndExit2) {
  const std::string spec = Write("bad.yaml", R"(models: [{name: m, path: models/tiny-llama}]
sequence_lengths: [512]
methods: [snapk, {name: quest, compression: [0.5]}]
tasks: [ruler_niah]
)");
  CliResult r = RunCli({"validate", spec, "--base-dir", dir_.string()});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err,
              HasSubstr(spec + ":3:11: error: unknown method 'snapk'; did you mean 'snapkv'?"));
  EXPECT_THAT(r.err, HasSubstr(spec + ":3:46: error: method quest compression 0.5 is below 1"));
  EXPECT_THAT(r.err, HasSubstr("sfctl: 2 errors in " + spec + "; nothing would be submitted"));
  EXPECT_TRUE(r.out.empty());
}

// --format json: the grid as data, or every error with its line and column; --set
// overrides a key without editing the file.
TEST_F(ValidateTest, JsonAndOverrides) {
  const std::string spec = Write("s.yaml", R"(models: [{name: m, path: models/tiny-llama}]
sequence_lengths: [512, 1024]
methods: [dense]
tasks: [{name: ruler_vt, num_hop: 2}]
)");
  CliResult bad = RunCli({"validate", spec, "--base-dir", dir_.string(), "--format", "json"});
  EXPECT_EQ(bad.code, kExitUsage);
  const auto errors = nlohmann::json::parse(bad.out);
  EXPECT_EQ(errors["valid"], false);
  ASSERT_EQ(errors["errors"].size(), 1u);
  EXPECT_EQ(errors["errors"][0]["line"], 4);
  EXPECT_EQ(errors["errors"][0]["column"], 26);
  EXPECT_THAT(errors["errors"][0]["message"].get<std::string>(),
              HasSubstr("did you mean 'num_hops'?"));

  CliResult good =
      RunCli({"validate", spec, "--base-dir", dir_.string(), "--format", "json", "--set",
              "tasks=[{name: ruler_vt, num_hops: 2}]", "--set", "lengths=[512]"});
  EXPECT_EQ(good.code, kExitOk) << good.err << good.out;
  const auto grid = nlohmann::json::parse(good.out);
  EXPECT_EQ(grid["valid"], true);
  EXPECT_EQ(grid["jobs"], 1);

  CliResult typo = RunCli({"validate", spec, "--set", "lenghts=[512]"});
  EXPECT_EQ(typo.code, kExitUsage);
  EXPECT_THAT(typo.err, HasSubstr("unknown key 'lenghts'"));
}

TEST_F(ValidateTest, MaxJobs_IsTheConfiguredLimit) {
  const std::string spec = Write("s.yaml", R"(models: [{name: m, path: models/tiny-llama}]
sequence_lengths: [512, 1024, 2048]
methods: [dense]
tasks: [ruler_niah]
)");
  CliResult r = RunCli({"validate", spec, "--base-dir", dir_.string(), "--max-jobs", "2"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("the grid has 3 jobs (models 1 x sequence_lengths 3 x methods 1 x "
                               "tasks 1 x seeds 1), more than the limit of 2"));
}

TEST_F(ValidateTest, MissingFile_IsUsageError) {
  CliResult r = RunCli({"validate", (dir_ / "absent.yaml").string()});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("cannot read sweep spec"));
}

TEST_F(ValidateTest, Help_DescribesTheCommand) {
  CliResult r = RunCli({"validate", "--help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, HasSubstr("file:line:column"));
  EXPECT_THAT(r.out, HasSubstr("--max-jobs"));
  EXPECT_THAT(r.out, HasSubstr("--base-dir"));
}

}  // namespace
}  // namespace sf::cli
