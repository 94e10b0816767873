#include "common/job_key.h"

#include <functional>
#include <string>
#include <vector>

#include "common/sha256.h"
#include "common/spec.h"
#include "common/testing/model_fixture.h"
#include "common/testing/status_matchers.h"
#include "common/version.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf {
namespace {

using ::testing::HasSubstr;

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalEqualsOneShotAcrossBlockBoundaries) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>(i * 7 + 3));
  for (size_t split : {0, 1, 55, 56, 63, 64, 65, 128, 299}) {
    Sha256 h;
    h.Update(absl::string_view(data).substr(0, split));
    h.Update(absl::string_view(data).substr(split));
    EXPECT_EQ(DigestHex(h.Finish()), Sha256Hex(data)) << split;
  }
}

JobSpec BaseJob() {
  JobSpec job;
  job.model = {"tiny", "/models/tiny", std::string(64, 'a'), 0};
  job.sequence_length = 1024;
  job.prefill.name = "vertical_slash";
  job.prefill.params = {
      {"last_q", int64_t{256}}, {"verticals", int64_t{100}}, {"slashes", int64_t{200}}};
  job.prefill.compression = 2.0;
  job.decode.name = "dense";
  job.task.name = "ruler_niah";
  job.task.samples = 10;
  job.task.params = {{"needles", int64_t{1}}};
  job.seed = 43;
  job.generation = {64, true};
  return job;
}

TEST(JobKey, IsHexSha256OfCanonicalTextWithEngineVersion) {
  const JobSpec job = BaseJob();
  const std::string key = JobKey(job);
  EXPECT_EQ(key.size(), 64u);
  EXPECT_EQ(key, Sha256Hex(CanonicalJobText(job)));
  EXPECT_THAT(CanonicalJobText(job), HasSubstr(kEngineVersion));
}

TEST(JobKey, ChangesWhenAnyResultFieldChanges) {
  const std::string base = JobKey(BaseJob());
  const std::vector<std::pair<const char*, std::function<void(JobSpec&)>>> mutations = {
      {"model identity", [](JobSpec& j) { j.model.identity[0] = 'b'; }},
      {"sequence length", [](JobSpec& j) { j.sequence_length = 2048; }},
      {"prefill name", [](JobSpec& j) { j.prefill.name = "block_sparse"; }},
      {"prefill param value", [](JobSpec& j) { j.prefill.params["verticals"] = int64_t{101}; }},
      {"prefill param type", [](JobSpec& j) { j.prefill.params["verticals"] = 100.0; }},
      {"prefill param added", [](JobSpec& j) { j.prefill.params["sink"] = int64_t{4}; }},
      {"compression", [](JobSpec& j) { j.prefill.compression = 2.5; }},
      {"compression dropped", [](JobSpec& j) { j.prefill.compression.reset(); }},
      {"decode method", [](JobSpec& j) { j.decode.name = "snapkv"; }},
      {"decode param", [](JobSpec& j) { j.decode.params["x"] = true; }},
      {"task name", [](JobSpec& j) { j.task.name = "ruler_vt"; }},
      {"task samples", [](JobSpec& j) { j.task.samples = 11; }},
      {"task param", [](JobSpec& j) { j.task.params["needles"] = int64_t{2}; }},
      {"task param string", [](JobSpec& j) { j.task.params["needles"] = std::string("1"); }},
      {"task data", [](JobSpec& j) { j.task.data_identity = "file a.json 10"; }},
      {"seed", [](JobSpec& j) { j.seed = 44; }},
      {"max new tokens", [](JobSpec& j) { j.generation.max_new_tokens = 65; }},
      {"greedy", [](JobSpec& j) { j.generation.greedy = false; }},
  };
  for (const auto& [what, mutate] : mutations) {
    JobSpec job = BaseJob();
    mutate(job);
    EXPECT_NE(JobKey(job), base) << what;
  }
}

TEST(JobKey, IgnoresLabelsPathsAndEstimates) {
  const std::string base = JobKey(BaseJob());
  JobSpec job = BaseJob();
  job.model.name = "other-name";
  job.model.path = "/elsewhere";
  job.model.gpus = 4;
  job.memory_bytes = 123;
  job.cost = 7;
  job.key = "stale";
  EXPECT_EQ(JobKey(job), base);
}

TEST(JobKey, IndependentOfParamInsertionOrder) {
  JobSpec a = BaseJob(), b = BaseJob();
  a.prefill.params.clear();
  b.prefill.params.clear();
  a.prefill.params["last_q"] = int64_t{256};
  a.prefill.params["verticals"] = int64_t{100};
  a.prefill.params["slashes"] = int64_t{200};
  b.prefill.params["slashes"] = int64_t{200};
  b.prefill.params["verticals"] = int64_t{100};
  b.prefill.params["last_q"] = int64_t{256};
  EXPECT_EQ(JobKey(a), JobKey(b));
}

TEST(JobKey, NoAmbiguityBetweenNameAndValue) {
  JobSpec a = BaseJob(), b = BaseJob();
  a.task.params = {{"a", std::string("b;c=sd")}};
  b.task.params = {{"a", std::string("b")}, {"c", std::string("d")}};
  EXPECT_NE(JobKey(a), JobKey(b));
}

TEST(JobKey, MovedDatasetKeepsKeyWhenIdentityMatches) {
  JobSpec a = BaseJob(), b = BaseJob();
  a.task.data_identity = b.task.data_identity = "file squad.json 1000";
  a.task.params["path"] = std::string("/data/squad.json");
  b.task.params["path"] = std::string("/mnt/other/squad.json");
  EXPECT_EQ(JobKey(a), JobKey(b));
}

// The same sweep written in block and flow style, keys in another order, with comments
// and a parameter given at its default: the same jobs, the same keys.
TEST(JobKey, SameKeysWhateverTheYamlFormatting) {
  const auto dir = sf::testing::FreshTestDir();
  sf::testing::WriteModel(dir / "m");
  SpecOptions options;
  options.base_dir = dir.string();
  const char* flow = R"(name: a
models: [{name: m, path: m}]
sequence_lengths: [512, 1024]
methods: [dense, {name: quest, compression: [2, 4]}, {name: snapkv, token_capacity: 64}]
tasks: [{name: ruler_niah, samples: 4, num_queries: 2}]
generation: {max_new_tokens: 16, greedy: true}
seed: 7
)";
  const char* block = R"(# the same sweep, formatted differently
seed: 7
generation:
  greedy: true
  max_new_tokens: 16
tasks:
  - num_queries: 2
    samples: 4
    name: ruler_niah
methods:
  - name: dense
  - name: quest
    page: 16          # the default
    compression:
      - 2.0
      - 4
  - {token_capacity: 64, name: snapkv, window: 256}
sequence_lengths:
  - 512
  - 1024
models:
  - path: ./m/
    name: another-label
name: b
)";
  SF_ASSERT_OK_AND_ASSIGN(SweepSpec sa, ParseSweepSpec(flow, "a.yaml", options));
  SF_ASSERT_OK_AND_ASSIGN(SweepSpec sb, ParseSweepSpec(block, "b.yaml", options));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<JobSpec> ja, ExpandSweep(sa));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<JobSpec> jb, ExpandSweep(sb));
  ASSERT_EQ(ja.size(), jb.size());
  ASSERT_EQ(ja.size(), 2u * 4u);
  for (size_t i = 0; i < ja.size(); ++i) EXPECT_EQ(ja[i].key, jb[i].key) << i;
}

}  // namespace
}  // namespace sf
