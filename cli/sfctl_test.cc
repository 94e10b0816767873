#include "cli/sfctl.h"

#include <sstream>
#include <vector>

#include "cli/command.h"
#include "cli/testing/run_cli.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf::cli {
namespace {

using ::testing::HasSubstr;

TEST(Sfctl, Help_ListsCommandsAndExitCodes) {
  CliResult r = RunCli({"--help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, HasSubstr("version"));
  EXPECT_THAT(r.out, HasSubstr("devices"));
  EXPECT_THAT(r.out, HasSubstr("Exit codes"));
}

TEST(Sfctl, Version_PrintsEngineAndCommit) {
  CliResult r = RunCli({"version"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, HasSubstr("engine sf-engine-"));
  EXPECT_THAT(r.out, HasSubstr("commit "));
}

TEST(Sfctl, Devices_AlwaysAnswers) {
  CliResult r = RunCli({"devices"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_FALSE(r.out.empty());
}

TEST(Sfctl, UnknownCommand_IsUsageError) {
  CliResult r = RunCli({"frobnicate"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("frobnicate"));
}

TEST(Sfctl, MistypedCommand_SuggestsTheClosest) {
  CliResult r = RunCli({"resutls"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("did you mean 'results'?"));
}

TEST(Sfctl, MistypedFlag_SuggestsTheClosest) {
  CliResult r = RunCli({"results", "--formt", "csv"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("sfctl results: unknown flag '--formt'; did you mean '--format'?"));
  CliResult nested = RunCli({"tasks", "list", "--fromat", "json"});
  EXPECT_EQ(nested.code, kExitUsage);
  EXPECT_THAT(nested.err, HasSubstr("did you mean '--format'?"));
}

TEST(Sfctl, Completion_CoversCommandsAndTheirFlags) {
  CliResult bash = RunCli({"completion", "bash"});
  EXPECT_EQ(bash.code, kExitOk) << bash.err;
  EXPECT_THAT(bash.out, HasSubstr("complete -o filenames -F _sfctl sfctl"));
  EXPECT_THAT(bash.out, HasSubstr("results) opts=\""));
  EXPECT_THAT(bash.out, HasSubstr("--wide"));
  EXPECT_THAT(bash.out, HasSubstr("--db"));
  CliResult zsh = RunCli({"completion", "zsh"});
  EXPECT_EQ(zsh.code, kExitOk);
  EXPECT_THAT(zsh.out, HasSubstr("bashcompinit"));
  EXPECT_EQ(RunCli({"completion", "fish"}).code, kExitUsage);
}

TEST(Sfctl, NoCommand_IsUsageError) { EXPECT_EQ(RunCli({}).code, kExitUsage); }

TEST(ExitCodeFor, MapsByWhatTheCallerShouldDo) {
  EXPECT_EQ(ExitCodeFor(absl::OkStatus()), kExitOk);
  EXPECT_EQ(ExitCodeFor(absl::InvalidArgumentError("x")), kExitUsage);
  EXPECT_EQ(ExitCodeFor(absl::UnavailableError("x")), kExitUnavailable);
  EXPECT_EQ(ExitCodeFor(absl::InternalError("x")), kExitFailure);
}

}  // namespace
}  // namespace sf::cli
