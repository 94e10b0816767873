#include "common/model_identity.h"

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_replace.h"
#include "common/model_cost.h"
#include "common/testing/model_fixture.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf {
namespace {

using ::sf::testing::kTinyLlamaConfig;
using ::sf::testing::StatusIs;
using ::testing::HasSubstr;

using model::ModelConfig;
using model::ParseModelConfig;

TEST(ParseModelConfig, ReadsShapeWithDefaults) {
  SF_ASSERT_OK_AND_ASSIGN(ModelConfig s, ParseModelConfig(kTinyLlamaConfig, "config.json"));
  EXPECT_EQ(s.num_layers, 2);
  EXPECT_EQ(s.hidden_size, 64);
  EXPECT_EQ(s.num_heads, 4);
  EXPECT_EQ(s.num_kv_heads, 2);
  EXPECT_EQ(s.head_dim, 16);
  EXPECT_EQ(s.DtypeBytes(), 2);
  SF_ASSERT_OK_AND_ASSIGN(
      ModelConfig mha,
      ParseModelConfig(absl::StrReplaceAll(kTinyLlamaConfig, {{"\"num_key_value_heads\": 2,", ""}}),
                       "config.json"));
  EXPECT_EQ(mha.num_kv_heads, 4);
  SF_ASSERT_OK_AND_ASSIGN(
      ModelConfig no_dtype,
      ParseModelConfig(
          absl::StrReplaceAll(kTinyLlamaConfig, {{"\"torch_dtype\": \"bfloat16\",", ""}}),
          "config.json"));
  EXPECT_EQ(no_dtype.DtypeBytes(), 4);
  SF_ASSERT_OK_AND_ASSIGN(
      ModelConfig v5,
      ParseModelConfig(absl::StrReplaceAll(kTinyLlamaConfig, {{"\"torch_dtype\": \"bfloat16\"",
                                                               "\"dtype\": \"float16\""}}),
                       "config.json"));
  EXPECT_EQ(v5.DtypeBytes(), 2);
}

TEST(ParseModelConfig, MissingOrBadFieldsNamed) {
  EXPECT_THAT(
      ParseModelConfig(absl::StrReplaceAll(kTinyLlamaConfig, {{"\"vocab_size\": 256,", ""}}),
                       "/m/config.json"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("/m/config.json: missing field \"vocab_size\"")));
  EXPECT_THAT(ParseModelConfig(absl::StrReplaceAll(kTinyLlamaConfig, {{"\"hidden_size\": 64",
                                                                       "\"hidden_size\": \"64\""}}),
                               "c.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"hidden_size\" must be")));
  EXPECT_THAT(ParseModelConfig("{not json", "c.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a JSON object")));
  EXPECT_THAT(
      ParseModelConfig(absl::StrReplaceAll(kTinyLlamaConfig, {{"bfloat16", "int4"}}), "c.json"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dtype \"int4\"")));
}

TEST(InspectModel, IdentityFollowsConfigTokenizerAndWeightsNotLocation) {
  const auto dir = sf::testing::FreshTestDir();
  sf::testing::WriteModel(dir / "a");
  sf::testing::WriteModel(dir / "b");
  SF_ASSERT_OK_AND_ASSIGN(ModelInfo a, InspectModel((dir / "a").string()));
  SF_ASSERT_OK_AND_ASSIGN(ModelInfo b, InspectModel((dir / "b").string()));
  EXPECT_EQ(a.identity, b.identity);
  EXPECT_EQ(a.weight_bytes, 1000);

  sf::testing::WriteFile(dir / "b/model.safetensors", std::string(1001, 'w'));
  SF_ASSERT_OK_AND_ASSIGN(ModelInfo resized, InspectModel((dir / "b").string()));
  EXPECT_NE(resized.identity, a.identity);

  sf::testing::WriteModel(dir / "c");
  sf::testing::WriteFile(dir / "c/tokenizer.json", "{}");
  SF_ASSERT_OK_AND_ASSIGN(ModelInfo tok, InspectModel((dir / "c").string()));
  EXPECT_NE(tok.identity, a.identity);

  sf::testing::WriteModel(dir / "d");
  std::filesystem::rename(dir / "d/model.safetensors", dir / "d/model-00001.safetensors");
  SF_ASSERT_OK_AND_ASSIGN(ModelInfo renamed, InspectModel((dir / "d").string()));
  EXPECT_NE(renamed.identity, a.identity);
}

TEST(InspectModel, MissingFolderOrConfigIsNotFound) {
  const auto dir = sf::testing::FreshTestDir();
  EXPECT_THAT(InspectModel((dir / "none").string()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("does not exist")));
  std::filesystem::create_directories(dir / "empty");
  EXPECT_THAT(InspectModel((dir / "empty").string()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("has no config.json")));
}

TEST(InspectModel, ConfigNotARegularFile_SaysSoInsteadOfMissing) {
  const auto dir = sf::testing::FreshTestDir();
  std::filesystem::create_directories(dir / "fifo");
  ASSERT_EQ(mkfifo((dir / "fifo/config.json").c_str(), 0600), 0);
  EXPECT_THAT(InspectModel((dir / "fifo").string()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a regular file")));
  EXPECT_THAT(model::LoadModelConfig((dir / "fifo").string()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a regular file")));
  std::filesystem::create_directories(dir / "zero");
  std::filesystem::create_symlink("/dev/zero", dir / "zero/config.json");
  EXPECT_THAT(InspectModel((dir / "zero").string()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a regular file")));
  EXPECT_THAT(model::LoadModelConfig((dir / "zero").string()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a regular file")));
}

TEST(InspectModel, WithoutWeightsEstimatesFromShape) {
  const auto dir = sf::testing::FreshTestDir();
  sf::testing::WriteFile(dir / "m/config.json", kTinyLlamaConfig);
  SF_ASSERT_OK_AND_ASSIGN(ModelInfo m, InspectModel((dir / "m").string()));
  EXPECT_EQ(m.weight_bytes, m.parameters * 2);
}

TEST(Estimates, KvCacheMatchesFormula) {
  ModelInfo m;
  m.config.num_layers = 28;
  m.config.hidden_size = 3584;
  m.config.num_heads = 28;
  m.config.num_kv_heads = 4;
  m.config.head_dim = 128;
  m.config.intermediate_size = 18944;
  m.config.vocab_size = 152064;
  m.config.torch_dtype = "bfloat16";
  m.parameters = model::CountParameters(m.config).Total();
  m.weight_bytes = m.parameters * 2;
  // Qwen2.5-7B: about 7.6e9 parameters.
  EXPECT_NEAR(static_cast<double>(m.parameters), 7.6e9, 0.2e9);
  const int64_t a = EstimateMemoryBytes(m, 32768, 0);
  const int64_t b = EstimateMemoryBytes(m, 65536, 0);
  const int64_t kv_per_token = 2 * 28 * 4 * 128 * 2;
  const int64_t activations_per_token = 4 * (2 * 3584 + 28 * 128 + 2 * 18944);
  EXPECT_EQ(b - a, 32768 * (kv_per_token + activations_per_token));
  EXPECT_GT(EstimateSampleFlops(m, 65536, 0, 1, 1), EstimateSampleFlops(m, 65536, 0, 10, 1));
  EXPECT_GT(EstimateSampleFlops(m, 65536, 100, 1, 1), EstimateSampleFlops(m, 65536, 100, 1, 10));
}

// Jobs are ordered by the cost model the worker records with: dense pairs over each
// phase's compression, T - 1 decode steps for T new tokens.
TEST(Estimates, SampleFlopsAreTheCostModels) {
  const auto dir = sf::testing::FreshTestDir();
  sf::testing::WriteModel(dir / "m");
  SF_ASSERT_OK_AND_ASSIGN(ModelInfo m, InspectModel((dir / "m").string()));
  const model::CostModel cost(m.config);
  EXPECT_DOUBLE_EQ(EstimateSampleFlops(m, 4096, 64, 4.0, 1.0),
                   cost.Nominal(4096, 64, 4.0, 1.0, 0.0).Total());
  // Compressions below 1 count as 1.
  EXPECT_DOUBLE_EQ(EstimateSampleFlops(m, 4096, 64, 0.5, 0.5),
                   cost.Nominal(4096, 64, 1.0, 1.0, 0.0).Total());
}

}  // namespace
}  // namespace sf
