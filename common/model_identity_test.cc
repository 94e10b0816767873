#include "common/model_identity.h"

#include <filesystem>
#include <string>

#include "absl/strings/str_replace.h"
#include "common/testing/model_fixture.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf {
namespace {

using ::sf::testing::kTinyLlamaConfig;
using ::sf::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ParseModelConfig, ReadsShapeWithDefaults) {
  SF_ASSERT_OK_AND_ASSIGN(ModelShape s, ParseModelConfig(kTinyLlamaConfig, "config.json"));
  EXPECT_EQ(s.layers, 2);
  EXPECT_EQ(s.hidden, 64);
  EXPECT_EQ(s.heads, 4);
  EXPECT_EQ(s.kv_heads, 2);
  EXPECT_EQ(s.head_dim, 16);
  EXPECT_EQ(s.dtype_bytes, 2);
  SF_ASSERT_OK_AND_ASSIGN(
      ModelShape mha,
      ParseModelConfig(absl::StrReplaceAll(kTinyLlamaConfig, {{"\"num_key_value_heads\": 2,", ""}}),
                       "config.json"));
  EXPECT_EQ(mha.kv_heads, 4);
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
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("torch_dtype \"int4\"")));
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

TEST(InspectModel, WithoutWeightsEstimatesFromShape) {
  const auto dir = sf::testing::FreshTestDir();
  sf::testing::WriteFile(dir / "m/config.json", kTinyLlamaConfig);
  SF_ASSERT_OK_AND_ASSIGN(ModelInfo m, InspectModel((dir / "m").string()));
  EXPECT_EQ(m.weight_bytes, m.parameters * 2);
}

TEST(Estimates, KvCacheMatchesFormula) {
  ModelInfo m;
  m.shape = {.layers = 28,
             .hidden = 3584,
             .heads = 28,
             .kv_heads = 4,
             .head_dim = 128,
             .intermediate = 18944,
             .vocab = 152064,
             .dtype_bytes = 2};
  m.parameters = ParameterCount(m.shape);
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

}  // namespace
}  // namespace sf
