#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/sfctl.h"
#include "cli/testing/run_cli.h"
#include "common/method_catalog.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "worker/model/testing/real_tokenizers.h"

namespace sf::cli {
namespace {

using ::testing::HasSubstr;

TEST(SfctlFidelity, Help_ListsEveryMethodAndParameter) {
  CliResult r = RunCli({"fidelity", "--help"});
  EXPECT_EQ(r.code, kExitOk);
  for (const MethodInfo& m : AllMethods()) {
    EXPECT_THAT(r.out, HasSubstr(m.name));
    for (const MethodParam& p : m.params) EXPECT_THAT(r.out, HasSubstr(p.name)) << m.name;
  }
}

TEST(SfctlFidelity, SmallRun_PrintsARowPerMethodAndCompression) {
  CliResult r =
      RunCli({"fidelity", "--length", "256", "--heads", "4", "--kv-heads", "2", "--compression",
              "2", "--decode-steps", "16", "--param", "snapkv.keep_last=16", "--param",
              "ada_snapkv.keep_last=16", "--param", "flexprefill.min_budget=16"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  for (const MethodInfo& m : AllMethods()) EXPECT_THAT(r.out, HasSubstr(m.name));
  EXPECT_THAT(r.out, HasSubstr("prefill oracle_topk"));
  EXPECT_THAT(r.out, HasSubstr("decode  quest"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("n/a")));
}

TEST(SfctlFidelity, DumpRoundTrip_GivesTheSameTable) {
  const std::string path = ::testing::TempDir() + "/sfctl_fidelity_dump.bin";
  CliResult a =
      RunCli({"fidelity", "--length", "128", "--heads", "2", "--kv-heads", "1", "--methods",
              "oracle_topk", "--phase", "prefill", "--write-dump", path.c_str()});
  ASSERT_EQ(a.code, kExitOk) << a.err;
  CliResult b = RunCli(
      {"fidelity", "--dump", path.c_str(), "--methods", "oracle_topk", "--phase", "prefill"});
  ASSERT_EQ(b.code, kExitOk) << b.err;
  // Same rows apart from the source line and the timing column.
  EXPECT_THAT(b.out, HasSubstr("top_k="));
  EXPECT_THAT(b.out, HasSubstr("dump "));
}

TEST(SfctlFidelity, ExactAndFast_PrintTheSameCalibratedRows) {
  const std::vector<std::string> common = {
      "fidelity", "--length",  "300",
      "--heads",  "2",         "--kv-heads",
      "1",        "--methods", "block_sparse,streaming,oracle_topk",
      "--phase",  "prefill",   "--compression",
      "3"};
  std::vector<std::string> exact = common;
  exact.push_back("--exact");
  CliResult a = RunCli(common), b = RunCli(exact);
  ASSERT_EQ(a.code, kExitOk) << a.err;
  ASSERT_EQ(b.code, kExitOk) << b.err;
  for (const char* p : {"block_budget=", "window=", "top_k="}) {
    const size_t at = a.out.find(p), bt = b.out.find(p);
    ASSERT_NE(at, std::string::npos) << p;
    ASSERT_NE(bt, std::string::npos) << p;
    EXPECT_EQ(a.out.substr(at, a.out.find('\n', at) - at),
              b.out.substr(bt, b.out.find('\n', bt) - bt));
  }
}

TEST(SfctlFidelity, CompareDir_WritesTheCasesTheHarnessReads) {
  const std::string dir = ::testing::TempDir() + "/sfctl_fidelity_compare";
  CliResult r = RunCli({"fidelity", "--length", "512", "--heads", "2", "--kv-heads", "1",
                        "--random", "--compare-dir", dir.c_str()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  std::ifstream f(dir + "/cases.json");
  const nlohmann::json doc = nlohmann::json::parse(f);
  EXPECT_EQ(doc["format"], "sf-compare-1");
  EXPECT_EQ(doc["length"], 512);
  std::vector<std::string> kinds;
  for (const auto& c : doc["cases"]) kinds.push_back(c["kind"]);
  EXPECT_THAT(kinds, ::testing::IsSupersetOf({"blocks", "lines", "kept", "pages"}));
  for (const auto& c : doc["cases"]) {
    if (c["kind"] == "lines") {
      EXPECT_EQ(c["columns"].size(), 2u);
      EXPECT_FALSE(c["columns"][0].empty());
      std::ifstream out(dir + "/" + c["output"].get<std::string>(),
                        std::ios::binary | std::ios::ate);
      EXPECT_EQ(static_cast<int64_t>(out.tellg()), 2 * 512 * 64 * 4);
    }
  }
}

TEST(SfctlFidelity, BadArguments_AreUsageErrorsThatSayWhy) {
  CliResult r = RunCli({"fidelity", "--compression", "0.5"});
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

TEST(SfctlDumpQkv, ModelRunDump_FeedsTheFidelityTable) {
  const std::string dir = ::testing::TempDir() + "/sf_dump_qkv_model";
  const std::string dump = ::testing::TempDir() + "/sf_dump_qkv.bin";
  const std::string tok = sf::testing::RealTokenizerPath("llama3");
  CliResult made = RunCli({"make-tiny-model", "--out", dir.c_str(), "--tokenizer", tok.c_str(),
                           "--layers", "3", "--max-positions", "2048"});
  ASSERT_EQ(made.code, kExitOk) << made.err;

  CliResult bad =
      RunCli({"dump-qkv", "--model", dir.c_str(), "--out", dump.c_str(), "--layer", "3"});
  EXPECT_EQ(bad.code, kExitUsage);
  EXPECT_THAT(bad.err, HasSubstr("--layer 3"));
  EXPECT_THAT(bad.err, HasSubstr("has 3 layers"));

  CliResult r = RunCli({"dump-qkv", "--model", dir.c_str(), "--out", dump.c_str(), "--length",
                        "1024", "--task", "ruler_niah"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("layer 1 of 3, Hq=4 Hkv=2"));
  CliResult table = RunCli({"fidelity", "--dump", dump.c_str(), "--methods",
                            "dense,streaming,oracle_topk", "--compression", "2"});
  ASSERT_EQ(table.code, kExitOk) << table.err;
  EXPECT_THAT(table.out, HasSubstr("Hq=4 Hkv=2 D=16"));
  EXPECT_THAT(table.out, HasSubstr("prefill streaming"));
  EXPECT_THAT(table.out, HasSubstr("decode  oracle_topk"));
}

TEST(SfctlDumpQkv, MissingModel_NamesTheFolder) {
  CliResult r = RunCli({"dump-qkv", "--model", "/nonexistent/model", "--out", "/tmp/x.bin"});
  EXPECT_NE(r.code, kExitOk);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/model"));
}

}  // namespace
}  // namespace sf::cli
