#include "common/model_cost.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/model_config.h"
#include "common/testing/model_fixture.h"
#include "common/testing/released_configs.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace sf::model {
namespace {

using ::sf::testing::StatusIs;
using ::testing::HasSubstr;

struct ConfigCase {
  const char* name;
  const char* json;
  Architecture architecture;
  int64_t layers, hidden, heads, kv_heads, head_dim, intermediate, vocab;
  bool qkv_bias;
  int64_t parameters;  // the model card's count, where there is one
};

const std::vector<ConfigCase>& Cases() {
  static const std::vector<ConfigCase> cases = {
      {"spec fixture (tiny Llama)", sf::testing::kTinyLlamaConfig, Architecture::kLlama, 2, 64, 4,
       2, 16, 128, 256, false, 0},
      {"Qwen2.5-7B, transformers 4", sf::testing::kQwen25_7BConfig, Architecture::kQwen2, 28, 3584,
       28, 4, 128, 18944, 152064, true, 7615616512},
      {"Qwen2.5-7B, transformers 5", sf::testing::kQwen25_7BTransformers5Config,
       Architecture::kQwen2, 28, 3584, 28, 4, 128, 18944, 152064, true, 7615616512},
      {"Llama-3.1-8B", sf::testing::kLlama31_8BConfig, Architecture::kLlama, 32, 4096, 32, 8, 128,
       14336, 128256, false, 8030261248},
      {"Mistral-7B-v0.3", sf::testing::kMistral7BV03Config, Architecture::kMistral, 32, 4096, 32, 8,
       128, 14336, 32768, false, 7248023552},
  };
  return cases;
}

TEST(ParseModelConfig, EverySpelling_GivesItsShape) {
  for (const ConfigCase& c : Cases()) {
    SCOPED_TRACE(c.name);
    SF_ASSERT_OK_AND_ASSIGN(ModelConfig m, ParseModelConfig(c.json, "config.json"));
    EXPECT_EQ(m.architecture, c.architecture);
    EXPECT_EQ(m.num_layers, c.layers);
    EXPECT_EQ(m.hidden_size, c.hidden);
    EXPECT_EQ(m.num_heads, c.heads);
    EXPECT_EQ(m.num_kv_heads, c.kv_heads);
    EXPECT_EQ(m.head_dim, c.head_dim);
    EXPECT_EQ(m.intermediate_size, c.intermediate);
    EXPECT_EQ(m.vocab_size, c.vocab);
    EXPECT_EQ(m.qkv_bias, c.qkv_bias);
    EXPECT_FALSE(m.tie_word_embeddings);
    EXPECT_EQ(m.DtypeBytes(), 2);
    if (c.parameters > 0) {
      EXPECT_EQ(m.NumParameters(), c.parameters);
    }
  }
}

TEST(ParseModelConfig, Transformers4And5Spellings_AgreeOnRope) {
  SF_ASSERT_OK_AND_ASSIGN(ModelConfig v4,
                          ParseModelConfig(sf::testing::kQwen25_7BConfig, "v4.json"));
  SF_ASSERT_OK_AND_ASSIGN(ModelConfig v5,
                          ParseModelConfig(sf::testing::kQwen25_7BTransformers5Config, "v5.json"));
  EXPECT_EQ(v4.rope_theta, 1000000.0);
  EXPECT_EQ(v5.rope_theta, v4.rope_theta);
  EXPECT_EQ(v5.rope.type, RopeType::kDefault);
  EXPECT_EQ(v4.torch_dtype, v5.torch_dtype);
  EXPECT_FALSE(v4.sliding_window.has_value());  // use_sliding_window: false
}

TEST(ParseModelConfig, UnsupportedDtype_NamesIt) {
  EXPECT_THAT(ParseModelConfig(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64,
                                   "intermediate_size": 128, "num_hidden_layers": 2,
                                   "num_attention_heads": 4, "vocab_size": 256,
                                   "torch_dtype": "float8_e4m3fn"})",
                               "m/config.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("m/config.json: dtype \"float8_e4m3fn\" is not supported")));
}

TEST(CountParameters, Qwen25_7B_ByPart) {
  SF_ASSERT_OK_AND_ASSIGN(ModelConfig m,
                          ParseModelConfig(sf::testing::kQwen25_7BConfig, "config.json"));
  const ParameterCounts p = CountParameters(m);
  EXPECT_EQ(p.embedding, int64_t{152064} * 3584);
  EXPECT_EQ(p.lm_head, int64_t{152064} * 3584);
  // Per layer: q 3584x3584, k and v 3584x512, o 3584x3584, q/k/v biases 3584 + 2 x 512.
  EXPECT_EQ(p.attention, int64_t{28} * (2 * 3584 * 3584 + 2 * 3584 * 512 + 3584 + 2 * 512));
  EXPECT_EQ(p.mlp, int64_t{28} * 3 * 3584 * 18944);
  EXPECT_EQ(p.norms, 57 * 3584);
  EXPECT_EQ(p.Total(), 7615616512);
  EXPECT_EQ(p.Matmul(), 7070414848);  // analysis::LinearParams
  EXPECT_EQ(p.PerToken(), 7070414848 + 57 * 3584);
}

TEST(CountParameters, TiedEmbeddings_CountTheMatrixOnceAndUseItAsTheHead) {
  SF_ASSERT_OK_AND_ASSIGN(ModelConfig m,
                          ParseModelConfig(sf::testing::kTinyLlamaConfig, "config.json"));
  const ParameterCounts untied = CountParameters(m);
  m.tie_word_embeddings = true;
  const ParameterCounts tied = CountParameters(m);
  EXPECT_EQ(tied.lm_head, 0);
  EXPECT_EQ(untied.Total() - tied.Total(), 256 * 64);
  EXPECT_EQ(tied.Matmul(), untied.Matmul());  // the head still multiplies every token
  EXPECT_EQ(tied.PerToken(), untied.PerToken());
}

// Elements of every tensor in a safetensors file: the 8-byte little-endian header length,
// then a JSON header mapping tensor names to {dtype, shape, data_offsets}.
int64_t TensorElements(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  unsigned char size_bytes[8] = {};
  in.read(reinterpret_cast<char*>(size_bytes), 8);
  uint64_t size = 0;
  for (int i = 7; i >= 0; --i) size = (size << 8) | size_bytes[i];
  std::string header(size, '\0');
  in.read(header.data(), static_cast<std::streamsize>(size));
  EXPECT_TRUE(in.good()) << file;
  const nlohmann::json tensors = nlohmann::json::parse(header);
  int64_t elements = 0;
  for (auto it = tensors.begin(); it != tensors.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    int64_t n = 1;
    for (const nlohmann::json& d : it.value().at("shape")) n *= d.get<int64_t>();
    elements += n;
  }
  return elements;
}

// tests/data/model holds checkpoints saved by transformers 4.46 and 5.x (Llama, Qwen2
// with biases, Mistral; tied and untied; dtype and torch_dtype; rope_scaling and
// rope_parameters): the one parser reads each and the one count matches its weights.
TEST(CountParameters, EveryTestCheckpoint_MatchesItsWeightFiles) {
  const char* source = std::getenv("SF_SOURCE_DIR");
  const std::filesystem::path root =
      std::filesystem::path(source != nullptr ? source : ".") / "tests/data/model";
  int checked = 0;
  for (const auto& dir : std::filesystem::directory_iterator(root)) {
    SCOPED_TRACE(dir.path().string());
    SF_ASSERT_OK_AND_ASSIGN(ModelConfig m, LoadModelConfig(dir.path().string()));
    int64_t weights = 0;
    for (const auto& file : std::filesystem::directory_iterator(dir.path())) {
      if (file.path().extension() == ".safetensors") weights += TensorElements(file.path());
    }
    EXPECT_EQ(m.NumParameters(), weights);
    ++checked;
  }
  EXPECT_EQ(checked, 8);
}

ModelShape TinyShape() {  // 2 layers, 4 query heads of 16
  ModelShape s;
  s.vocab_size = 256;
  s.hidden_size = 64;
  s.intermediate_size = 128;
  s.num_layers = 2;
  s.num_heads = 4;
  s.num_kv_heads = 2;
  s.head_dim = 16;
  return s;
}

TEST(CostModel, DensePairs_PrefillCausalAndDecodeOverFedBackTokens) {
  const CostModel cost(TinyShape());
  EXPECT_DOUBLE_EQ(cost.DensePrefillPairs(10), 2 * 4 * 55);
  // One output token comes from the prefill's logits: no decode step.
  EXPECT_DOUBLE_EQ(cost.DenseDecodePairs(10, 1), 0.0);
  EXPECT_DOUBLE_EQ(cost.DenseDecodePairs(10, 0), 0.0);
  // Two output tokens: one step over 11 keys, as the engine counts it (engine_test:
  // 4 heads x 11 pairs x 2 layers).
  EXPECT_DOUBLE_EQ(cost.DenseDecodePairs(10, 2), 4 * 11 * 2);
  // Four: steps over 11, 12 and 13 keys.
  EXPECT_DOUBLE_EQ(cost.DenseDecodePairs(10, 4), 2 * 4 * (11 + 12 + 13));
}

TEST(CostModel, Nominal_IsMeasuredWithDensePairsOverCompression) {
  const CostModel cost(TinyShape());
  const double per_token = 2.0 * static_cast<double>(CountParameters(TinyShape()).PerToken());
  EXPECT_DOUBLE_EQ(cost.LinearFlopsPerToken(), per_token);
  EXPECT_DOUBLE_EQ(cost.FlopsPerPair(), 4.0 * 16);
  const FlopsBreakdown f = cost.Nominal(100, 8, 4.0, 2.0, 7.0);
  EXPECT_DOUBLE_EQ(f.prefill_linear, per_token * 100);
  EXPECT_DOUBLE_EQ(f.decode_linear, per_token * 8);
  EXPECT_DOUBLE_EQ(f.prefill_attention, 64.0 * cost.DensePrefillPairs(100) / 4.0);
  EXPECT_DOUBLE_EQ(f.decode_attention, 64.0 * cost.DenseDecodePairs(100, 8) / 2.0);
  EXPECT_DOUBLE_EQ(f.indexing, 7.0);
  EXPECT_DOUBLE_EQ(f.Total(), f.Prefill() + f.Decode() + 7.0);
  const FlopsBreakdown m = cost.Measured(100, 8, cost.DensePrefillPairs(100) / 4.0,
                                         cost.DenseDecodePairs(100, 8) / 2.0, 7.0);
  EXPECT_DOUBLE_EQ(m.Total(), f.Total());
}

TEST(CostModel, Qwen25_7B_DensePrefillByHand) {
  SF_ASSERT_OK_AND_ASSIGN(ModelConfig m,
                          ParseModelConfig(sf::testing::kQwen25_7BConfig, "config.json"));
  // L = 16384: linear 2 x 7070619136 x 16384; attention 4 x 128 per pair of one head,
  // 28 x 28 heads x 16384 x 16385 / 2 pairs = 4 x 28 x 28 x 128 x 134225920.
  const FlopsBreakdown f = CostModel(m).Nominal(16384, 0, 1.0, 1.0, 0.0);
  EXPECT_DOUBLE_EQ(f.prefill_linear, 2.0 * 7070619136.0 * 16384);
  EXPECT_DOUBLE_EQ(f.prefill_attention, 53879358095360.0);
  EXPECT_DOUBLE_EQ(f.Decode(), 0.0);
}

}  // namespace
}  // namespace sf::model
