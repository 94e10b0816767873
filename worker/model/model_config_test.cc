#include "common/model_config.h"

#include <cmath>
#include <fstream>
#include <numbers>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/model/test_util.h"
#include "worker/model/tiny_model.h"

namespace sf::model {
namespace {

using ::sf::model::testing::FreshTestDir;
using ::sf::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kLlama31[] = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
  "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
  "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "hidden_act": "silu",
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]
})";

constexpr char kQwen25Transformers5[] = R"({
  "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
  "vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944,
  "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
  "max_position_embeddings": 32768, "rms_norm_eps": 1e-06,
  "rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1000000.0,
                      "original_max_position_embeddings": 32768},
  "use_sliding_window": false, "sliding_window": 131072,
  "tie_word_embeddings": false, "dtype": "bfloat16", "eos_token_id": 151645
})";

TEST(ModelConfig, Llama31Transformers4_ParsesEveryField) {
  SF_ASSERT_OK_AND_ASSIGN(ModelConfig c, ParseModelConfig(kLlama31, "config.json"));
  EXPECT_EQ(c.architecture, Architecture::kLlama);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.NumQueryGroups(), 4);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope.type, RopeType::kLlama3);
  EXPECT_EQ(c.rope.factor, 8.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_THAT(c.eos_token_ids, ElementsAre(128001, 128008, 128009));
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_FALSE(c.random_weights);  // a real model's config has no sf_random_weights
  // Llama 3.1 8B has 8.03 billion parameters.
  EXPECT_NEAR(static_cast<double>(c.NumParameters()), 8.03e9, 0.01e9);
}

TEST(ModelConfig, Qwen25Transformers5_ReadsRopeParametersAndDtype) {
  SF_ASSERT_OK_AND_ASSIGN(ModelConfig c, ParseModelConfig(kQwen25Transformers5, "config.json"));
  EXPECT_EQ(c.architecture, Architecture::kQwen2);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_EQ(c.rope_theta, 1000000.0);
  EXPECT_EQ(c.rope.type, RopeType::kYarn);
  EXPECT_EQ(c.rope.factor, 4.0);
  EXPECT_FALSE(c.sliding_window.has_value());  // use_sliding_window is false
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_THAT(c.eos_token_ids, ElementsAre(151645));
}

TEST(ModelConfig, UnsupportedArchitecture_NamesItAndTheSupportedOnes) {
  std::string text = kLlama31;
  text.replace(text.find("LlamaForCausalLM"), 16, "GPT2LMHeadModel");
  EXPECT_THAT(ParseModelConfig(text, "m/config.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("GPT2LMHeadModel"), HasSubstr("Qwen2ForCausalLM"),
                             HasSubstr("m/config.json"))));
}

TEST(ModelConfig, UnsupportedRopeType_NamesItAndTheSupportedOnes) {
  std::string text = kLlama31;
  text.replace(text.find("\"llama3\""), 8, "\"dynamic\"");
  EXPECT_THAT(ParseModelConfig(text, "config.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'dynamic'"), HasSubstr("linear, llama3, yarn"))));
}

TEST(ModelConfig, WrongFieldType_NamesTheField) {
  std::string text = kLlama31;
  text.replace(text.find("\"num_hidden_layers\": 32"), 23, "\"num_hidden_layers\": \"32\"");
  EXPECT_THAT(ParseModelConfig(text, "config.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_hidden_layers")));
  EXPECT_THAT(ParseModelConfig("[]", "config.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a JSON object")));
}

TEST(ModelConfig, GenerationConfig_ReplacesEosWithIntOrList) {
  SF_ASSERT_OK_AND_ASSIGN(ModelConfig c, ParseModelConfig(kLlama31, "config.json"));
  SF_ASSERT_OK(ApplyGenerationConfig(R"({"eos_token_id": 7})", "g", &c));
  EXPECT_THAT(c.eos_token_ids, ElementsAre(7));
  SF_ASSERT_OK(ApplyGenerationConfig(R"({"eos_token_id": [3, 4], "bos_token_id": 1})", "g", &c));
  EXPECT_THAT(c.eos_token_ids, ElementsAre(3, 4));
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_THAT(ApplyGenerationConfig(R"({"eos_token_id": "x"})", "gen.json", &c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("eos_token_id")));
}

TEST(ModelConfig, TinyModelConfigs_RoundTripInBothSpellings) {
  for (bool v5 : {false, true}) {
    for (Architecture arch : {Architecture::kLlama, Architecture::kQwen2, Architecture::kMistral}) {
      TinyModelOptions o;
      o.architecture = arch;
      o.transformers5_config = v5;
      o.rope.type = RopeType::kYarn;
      o.rope.factor = 2.5;
      o.rope.original_max_position_embeddings = 1024;
      o.rope_theta = 50000;
      o.tie_word_embeddings = true;
      o.eos_token_ids = {5, 6};
      SF_ASSERT_OK_AND_ASSIGN(ModelConfig c, ParseModelConfig(TinyModelConfigJson(o), "tiny"));
      EXPECT_EQ(c.architecture, arch);
      EXPECT_EQ(c.rope.type, RopeType::kYarn);
      EXPECT_EQ(c.rope.factor, 2.5);
      EXPECT_EQ(c.rope.original_max_position_embeddings, 1024);
      EXPECT_EQ(c.rope_theta, 50000);
      EXPECT_TRUE(c.tie_word_embeddings);
      EXPECT_EQ(c.qkv_bias, arch == Architecture::kQwen2);
      EXPECT_THAT(c.eos_token_ids, ElementsAre(5, 6));
      EXPECT_EQ(c.torch_dtype, "bfloat16");
      EXPECT_TRUE(c.random_weights);  // make-tiny-model marks its models
    }
  }
}

TEST(ModelConfig, LoadModelConfig_PrefersGenerationConfigEos) {
  const std::string dir = FreshTestDir();
  TinyModelOptions o;
  o.eos_token_ids = {9};
  SF_ASSERT_OK(WriteTinyModel(dir, o));
  std::ofstream(dir + "/generation_config.json") << R"({"eos_token_id": [10, 11]})";
  SF_ASSERT_OK_AND_ASSIGN(ModelConfig c, LoadModelConfig(dir));
  EXPECT_THAT(c.eos_token_ids, ElementsAre(10, 11));
  EXPECT_THAT(LoadModelConfig(dir + "/absent"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("config.json")));
}

TEST(StudyYarn, AppliesOnlyPast32K) {
  EXPECT_FALSE(StudyYarnScaling(30000, 2768).has_value());
  std::optional<RopeScaling> r = StudyYarnScaling(64000, 1536);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->type, RopeType::kYarn);
  EXPECT_DOUBLE_EQ(r->factor, 65536.0 / 32768.0);
  EXPECT_EQ(r->original_max_position_embeddings, 32768);
  ModelConfig c;
  EXPECT_FALSE(ApplyStudyYarnRule(100, 100, &c));
  EXPECT_EQ(c.rope.type, RopeType::kDefault);
  EXPECT_TRUE(ApplyStudyYarnRule(128000, 1024, &c));
  EXPECT_DOUBLE_EQ(c.rope.factor, 129024.0 / 32768.0);
}

ModelConfig RopeConfig(RopeScaling rope) {
  ModelConfig c;
  c.head_dim = 64;
  c.rope_theta = 10000;
  c.max_position_embeddings = 4096;
  c.rope = rope;
  return c;
}

double DefaultInvFreq(int i, int dim, double theta) { return std::pow(theta, -2.0 * i / dim); }

TEST(Rope, DefaultAndLinear_FollowTheFormula) {
  SF_ASSERT_OK_AND_ASSIGN(RopeTable def, ComputeRope(RopeConfig({})));
  RopeScaling lin;
  lin.type = RopeType::kLinear;
  lin.factor = 4;
  SF_ASSERT_OK_AND_ASSIGN(RopeTable scaled, ComputeRope(RopeConfig(lin)));
  ASSERT_EQ(def.inv_freq.size(), 32u);
  for (int i = 0; i < 32; ++i) {
    EXPECT_NEAR(def.inv_freq[i], DefaultInvFreq(i, 64, 10000), 1e-6 * DefaultInvFreq(i, 64, 10000));
    EXPECT_NEAR(scaled.inv_freq[i], def.inv_freq[i] / 4, 1e-6 * def.inv_freq[i]);
  }
  EXPECT_EQ(def.attention_scaling, 1.0f);
}

TEST(Rope, Llama3_KeepsHighFrequenciesAndDividesLowOnes) {
  RopeScaling r;
  r.type = RopeType::kLlama3;
  r.factor = 8;
  r.low_freq_factor = 1;
  r.high_freq_factor = 4;
  r.original_max_position_embeddings = 8192;
  ModelConfig c = RopeConfig(r);
  c.rope_theta = 500000;
  SF_ASSERT_OK_AND_ASSIGN(RopeTable t, ComputeRope(c));
  for (int i = 0; i < 32; ++i) {
    const double base = DefaultInvFreq(i, 64, 500000);
    const double wavelen = 2 * std::numbers::pi / base;
    if (wavelen < 8192 / 4.0) {
      EXPECT_NEAR(t.inv_freq[i], base, 1e-6 * base) << i;
    }
    if (wavelen > 8192 / 1.0) {
      EXPECT_NEAR(t.inv_freq[i], base / 8, 1e-6 * base) << i;
    }
    EXPECT_LE(t.inv_freq[i], base * (1 + 1e-6));
    EXPECT_GE(t.inv_freq[i], base / 8 * (1 - 1e-6));
  }
}

TEST(Rope, Yarn_RampsFromExtrapolationToInterpolationAndScales) {
  RopeScaling r;
  r.type = RopeType::kYarn;
  r.factor = 4;
  r.original_max_position_embeddings = 4096;
  SF_ASSERT_OK_AND_ASSIGN(RopeTable t, ComputeRope(RopeConfig(r)));
  EXPECT_NEAR(t.attention_scaling, 0.1 * std::log(4.0) + 1.0, 1e-6);
  EXPECT_NEAR(t.inv_freq[0], DefaultInvFreq(0, 64, 10000), 1e-7);
  EXPECT_NEAR(t.inv_freq[31], DefaultInvFreq(31, 64, 10000) / 4, 1e-6 * t.inv_freq[31]);
  for (int i = 1; i < 32; ++i) EXPECT_LT(t.inv_freq[i], t.inv_freq[i - 1]);
  r.attention_factor = 1.5;
  SF_ASSERT_OK_AND_ASSIGN(RopeTable t2, ComputeRope(RopeConfig(r)));
  EXPECT_FLOAT_EQ(t2.attention_scaling, 1.5f);
}

}  // namespace
}  // namespace sf::model
