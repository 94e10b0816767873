#include <sstream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/sfctl.h"
#include "common/method_catalog.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf::cli {
namespace {

using ::testing::HasSubstr;

struct Result {
  int code;
  std::string out;
  std::string err;
};

Result RunCli(std::vector<const char*> args) {
  args.insert(args.begin(), "sfctl");
  std::istringstream in;
  std::ostringstream out, err;
  const int code = RunSfctl(static_cast<int>(args.size()), args.data(), in, out, err);
  return {code, out.str(), err.str()};
}

TEST(SfctlFidelity, Help_ListsEveryMethodAndParameter) {
  Result r = RunCli({"fidelity", "--help"});
  EXPECT_EQ(r.code, kExitOk);
  for (const MethodInfo& m : AllMethods()) {
    EXPECT_THAT(r.out, HasSubstr(m.name));
    for (const MethodParam& p : m.params) EXPECT_THAT(r.out, HasSubstr(p.name)) << m.name;
  }
}

TEST(SfctlFidelity, SmallRun_PrintsARowPerMethodAndCompression) {
  Result r = RunCli({"fidelity", "--length", "256", "--heads", "4", "--kv-heads", "2",
                     "--compression", "2", "--decode-steps", "16", "--param", "snapkv.keep_last=16",
                     "--param", "ada_snapkv.keep_last=16", "--param", "flexprefill.min_budget=16"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  for (const MethodInfo& m : AllMethods()) EXPECT_THAT(r.out, HasSubstr(m.name));
  EXPECT_THAT(r.out, HasSubstr("prefill oracle_topk"));
  EXPECT_THAT(r.out, HasSubstr("decode  quest"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("n/a")));
}

TEST(SfctlFidelity, DumpRoundTrip_GivesTheSameTable) {
  const std::string path = ::testing::TempDir() + "/sfctl_fidelity_dump.bin";
  Result a = RunCli({"fidelity", "--length", "128", "--heads", "2", "--kv-heads", "1", "--methods",
                     "oracle_topk", "--phase", "prefill", "--write-dump", path.c_str()});
  ASSERT_EQ(a.code, kExitOk) << a.err;
  Result b = RunCli(
      {"fidelity", "--dump", path.c_str(), "--methods", "oracle_topk", "--phase", "prefill"});
  ASSERT_EQ(b.code, kExitOk) << b.err;
  // Same rows apart from the source line and the timing column.
  EXPECT_THAT(b.out, HasSubstr("top_k="));
  EXPECT_THAT(b.out, HasSubstr("dump "));
}

TEST(SfctlFidelity, BadArguments_AreUsageErrorsThatSayWhy) {
  Result r = RunCli({"fidelity", "--compression", "0.5"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--compression"));
  r = RunCli({"fidelity", "--methods", "magic"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("magic"));
  r = RunCli({"fidelity", "--param", "snapkv.nope=1"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("nope"));
  r = RunCli({"fidelity", "--dump", "/nonexistent/qkv.bin"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/qkv.bin"));
}

}  // namespace
}  // namespace sf::cli
