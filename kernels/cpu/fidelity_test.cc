#include "kernels/cpu/fidelity.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf::kernels {
namespace {

using ::sf::testing::StatusIs;
using ::testing::HasSubstr;

GeneratorOptions Small() { return {512, 4, 2, 64, 3}; }

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/sf_fidelity_test_" + name;
}

TEST(Generator, SameSeed_SameTensors_OtherSeed_Differs) {
  SF_ASSERT_OK_AND_ASSIGN(LayerQkv a, GenerateStructuredQkv(Small()));
  SF_ASSERT_OK_AND_ASSIGN(LayerQkv b, GenerateStructuredQkv(Small()));
  GeneratorOptions other = Small();
  other.seed = 4;
  SF_ASSERT_OK_AND_ASSIGN(LayerQkv c, GenerateStructuredQkv(other));
  EXPECT_EQ(a.q.data, b.q.data);
  EXPECT_EQ(a.k.data, b.k.data);
  EXPECT_NE(a.q.data, c.q.data);
  EXPECT_EQ(a.q.heads, 4);
  EXPECT_EQ(a.k.heads, 2);
  EXPECT_EQ(a.k.len, 512);
}

TEST(Generator, InvalidOptions_AreInvalidArgument) {
  EXPECT_THAT(GenerateStructuredQkv({512, 6, 4, 64, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kv_heads")));
  EXPECT_THAT(GenerateStructuredQkv({512, 4, 2, 16, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("head_dim")));
}

TEST(Dump, WriteThenRead_RoundTrips) {
  SF_ASSERT_OK_AND_ASSIGN(LayerQkv a, GenerateStructuredQkv({97, 4, 1, 64, 2}));
  const std::string path = TempPath("roundtrip.bin");
  SF_ASSERT_OK(WriteQkvDump(path, a));
  SF_ASSERT_OK_AND_ASSIGN(LayerQkv b, ReadQkvDump(path));
  EXPECT_EQ(b.q.heads, 4);
  EXPECT_EQ(b.k.heads, 1);
  EXPECT_EQ(b.k.len, 97);
  EXPECT_EQ(a.q.data, b.q.data);
  EXPECT_EQ(a.v.data, b.v.data);
  std::remove(path.c_str());
}

TEST(Dump, MissingOrMalformed_SaysWhy) {
  EXPECT_THAT(ReadQkvDump(TempPath("absent.bin")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("absent")));
  const std::string path = TempPath("bad.bin");
  std::ofstream(path) << "not a dump at all";
  EXPECT_THAT(ReadQkvDump(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("SFQKV001")));
  SF_ASSERT_OK_AND_ASSIGN(LayerQkv a, GenerateStructuredQkv({97, 4, 1, 64, 2}));
  SF_ASSERT_OK(WriteQkvDump(path, a));
  {
    // Truncate: keep the header and a little data.
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), 200);
  }
  EXPECT_THAT(ReadQkvDump(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("truncated")));
  std::remove(path.c_str());
}

TEST(Fidelity, Dense_HasFullRecallAndNoError) {
  SF_ASSERT_OK_AND_ASSIGN(LayerQkv qkv, GenerateStructuredQkv(Small()));
  const DenseReference ref = ComputeDenseReference(qkv, Phase::kPrefill, 0);
  SF_ASSERT_OK_AND_ASSIGN(FidelityResult f, MeasureFidelity("dense", {}, qkv, ref));
  EXPECT_NEAR(f.min_recall(), 1.0, 1e-12);
  EXPECT_EQ(f.max_error(), 0.0);
  EXPECT_DOUBLE_EQ(f.measured_compression, 1.0);
  EXPECT_EQ(f.head_recall.size(), 4u);
}

TEST(Fidelity, OracleFrontier_BeatsStreamingAtEqualCompression) {
  SF_ASSERT_OK_AND_ASSIGN(LayerQkv qkv, GenerateStructuredQkv(Small()));
  for (Phase phase : {Phase::kPrefill, Phase::kDecode}) {
    const DenseReference ref = ComputeDenseReference(qkv, phase, 32);
    double last_oracle = 0;
    for (double c : {8.0, 4.0, 2.0}) {
      SF_ASSERT_OK_AND_ASSIGN(ParamMap po, CalibrateBudget("oracle_topk", {}, c, qkv, ref));
      SF_ASSERT_OK_AND_ASSIGN(ParamMap ps, CalibrateBudget("streaming", {}, c, qkv, ref));
      SF_ASSERT_OK_AND_ASSIGN(FidelityResult o, MeasureFidelity("oracle_topk", po, qkv, ref));
      SF_ASSERT_OK_AND_ASSIGN(FidelityResult s, MeasureFidelity("streaming", ps, qkv, ref));
      EXPECT_NEAR(o.measured_compression / c, 1.0, 0.1);
      EXPECT_GT(o.mean_recall(), s.mean_recall()) << c;
      EXPECT_LT(o.mean_error(), s.mean_error()) << c;
      EXPECT_GT(o.mean_recall(), last_oracle);  // recall grows with the budget
      last_oracle = o.mean_recall();
    }
  }
}

TEST(Fidelity, ThresholdMethods_CalibrateToTheTarget) {
  SF_ASSERT_OK_AND_ASSIGN(LayerQkv qkv, GenerateStructuredQkv(Small()));
  const DenseReference ref = ComputeDenseReference(qkv, Phase::kPrefill, 0);
  SF_ASSERT_OK_AND_ASSIGN(
      ParamMap p, CalibrateBudget("xattention", {{"block", int64_t{32}}, {"stride", int64_t{4}}},
                                  3.0, qkv, ref));
  SF_ASSERT_OK_AND_ASSIGN(FidelityResult f, MeasureFidelity("xattention", p, qkv, ref));
  EXPECT_NEAR(f.measured_compression / 3.0, 1.0, 0.15);
  SF_ASSERT_OK_AND_ASSIGN(
      ParamMap v, CalibrateBudget("vertical_slash", {{"last_q", int64_t{64}}}, 3.0, qkv, ref));
  SF_ASSERT_OK_AND_ASSIGN(FidelityResult g, MeasureFidelity("vertical_slash", v, qkv, ref));
  EXPECT_GE(g.measured_compression, 3.0);
  EXPECT_LT(g.measured_compression, 3.3);
}

// The fast table against the float64 path, request by request: same calibrated
// parameters, the same pairs, recall and error within the float32 tolerance.
void ExpectTableMatchesExact(const GeneratorOptions& g, Phase phase, int64_t decode_steps,
                             const std::vector<FidelityRequest>& requests) {
  SF_ASSERT_OK_AND_ASSIGN(LayerQkv qkv, GenerateStructuredQkv(g));
  const DenseReference ref = ComputeDenseReference(qkv, phase, decode_steps);
  const auto fast = MeasureFidelityTable(qkv, requests, {phase, decode_steps, 2});
  ASSERT_EQ(fast.size(), requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const FidelityRequest& rq = requests[i];
    SCOPED_TRACE(rq.method + " at " + std::to_string(rq.target_compression));
    SF_ASSERT_OK_AND_ASSIGN(ParamMap p,
                            CalibrateBudget(rq.method, rq.params, rq.target_compression, qkv, ref));
    SF_ASSERT_OK_AND_ASSIGN(FidelityResult exact, MeasureFidelity(rq.method, p, qkv, ref));
    ASSERT_TRUE(fast[i].ok()) << fast[i].status();
    const FidelityResult& f = *fast[i];
    EXPECT_EQ(f.params, p);
    EXPECT_NEAR(f.measured_compression / exact.measured_compression, 1.0, 1e-3);
    if (rq.method != "oracle_topk") {
      EXPECT_DOUBLE_EQ(f.measured_compression, exact.measured_compression);
    }
    EXPECT_DOUBLE_EQ(f.estimation_flops, exact.estimation_flops);
    ASSERT_EQ(f.head_recall.size(), exact.head_recall.size());
    for (size_t h = 0; h < f.head_recall.size(); ++h) {
      EXPECT_NEAR(f.head_recall[h], exact.head_recall[h], 1e-4) << "head " << h;
      EXPECT_NEAR(f.head_error[h], exact.head_error[h], 1e-4) << "head " << h;
    }
  }
}

TEST(FidelityTable, Prefill_MatchesTheExactPath) {
  std::vector<FidelityRequest> rq = {
      {"dense", {}, 1.0},
      {"block_sparse", {}, 3.0},
      {"vertical_slash", {{"last_q", int64_t{64}}}, 3.0},
      {"vertical_slash", {{"last_q", int64_t{64}}}, 6.0},
      // A last_q of its own: the table shares softmax rows between 64 and 96.
      {"flexprefill", {{"min_budget", int64_t{16}}, {"last_q", int64_t{96}}}, 3.0},
      {"flexprefill", {{"min_budget", int64_t{16}}}, 5.0},
      {"flexprefill",
       {{"min_budget", int64_t{16}}, {"block", int64_t{32}}, {"variant", std::string("original")}},
       2.0},
      {"xattention", {{"block", int64_t{32}}, {"stride", int64_t{4}}}, 3.0},
      {"streaming", {}, 3.0},
      {"oracle_topk", {}, 3.0},
      {"oracle_topk", {}, 8.0},
  };
  ExpectTableMatchesExact({517, 4, 2, 64, 5}, Phase::kPrefill, 0, rq);
  ExpectTableMatchesExact({131, 2, 1, 128, 6}, Phase::kPrefill, 0,
                          {{"oracle_topk", {}, 2.0}, {"streaming", {}, 2.0}});
}

TEST(FidelityTable, Decode_MatchesTheExactPath) {
  std::vector<FidelityRequest> rq = {
      {"dense", {}, 1.0},
      {"streaming", {}, 4.0},
      {"snapkv", {{"keep_last", int64_t{16}}, {"window", int64_t{32}}}, 4.0},
      {"snapkv", {{"keep_last", int64_t{16}}, {"window", int64_t{32}}}, 2.0},
      {"ada_snapkv", {{"keep_last", int64_t{16}}, {"window", int64_t{32}}}, 4.0},
      {"quest", {}, 4.0},
      {"oracle_topk", {}, 4.0},
  };
  ExpectTableMatchesExact({600, 4, 2, 64, 7}, Phase::kDecode, 40, rq);
}

TEST(FidelityTable, BadRequests_FailAloneAndSayWhy) {
  SF_ASSERT_OK_AND_ASSIGN(LayerQkv qkv, GenerateStructuredQkv(Small()));
  const auto r =
      MeasureFidelityTable(qkv, {{"snapkv", {}, 2.0}, {"magic", {}, 2.0}, {"streaming", {}, 2.0}},
                           {Phase::kPrefill, 0, 1});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_THAT(r[0], StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("prefill")));
  EXPECT_THAT(r[1], StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("magic")));
  EXPECT_TRUE(r[2].ok());
}

}  // namespace
}  // namespace sf::kernels
