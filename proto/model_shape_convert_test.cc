#include "proto/model_shape_convert.h"

#include "common/model_cost.h"
#include "gtest/gtest.h"

namespace sf {
namespace {

model::ModelConfig Qwen25_7B() {
  model::ModelConfig c;
  c.architecture = model::Architecture::kQwen2;
  c.hidden_size = 3584;
  c.num_layers = 28;
  c.num_heads = 28;
  c.num_kv_heads = 4;
  c.head_dim = 128;
  c.intermediate_size = 18944;
  c.vocab_size = 152064;
  c.qkv_bias = true;
  return c;
}

TEST(ModelShapeConvert, ToProto_RecordsShapeParamsAndRandomWeights) {
  model::ModelConfig c = Qwen25_7B();
  c.random_weights = true;
  const v1::ModelShape m = ModelShapeToProto(c);
  EXPECT_EQ(m.hidden(), 3584);
  EXPECT_EQ(m.layers(), 28);
  EXPECT_EQ(m.heads(), 28);
  EXPECT_EQ(m.kv_heads(), 4);
  EXPECT_EQ(m.head_dim(), 128);
  EXPECT_EQ(m.intermediate(), 18944);
  EXPECT_EQ(m.vocab(), 152064);
  EXPECT_TRUE(m.qkv_bias());
  EXPECT_FALSE(m.tied_embeddings());
  EXPECT_EQ(m.params(), 7615616512);
  EXPECT_TRUE(m.random_weights());
}

TEST(ModelShapeConvert, RoundTrip_KeepsTheShapeAndItsCounts) {
  model::ModelConfig c = Qwen25_7B();
  c.tie_word_embeddings = true;
  const model::ModelShape back = ModelShapeFromProto(ModelShapeToProto(c));
  EXPECT_EQ(back.hidden_size, c.hidden_size);
  EXPECT_EQ(back.num_layers, c.num_layers);
  EXPECT_EQ(back.num_heads, c.num_heads);
  EXPECT_EQ(back.num_kv_heads, c.num_kv_heads);
  EXPECT_EQ(back.head_dim, c.head_dim);
  EXPECT_EQ(back.intermediate_size, c.intermediate_size);
  EXPECT_EQ(back.vocab_size, c.vocab_size);
  EXPECT_EQ(back.qkv_bias, c.qkv_bias);
  EXPECT_EQ(back.tie_word_embeddings, c.tie_word_embeddings);
  EXPECT_EQ(back.NumParameters(), c.NumParameters());
  EXPECT_EQ(model::CostModel(back).LinearFlopsPerToken(),
            model::CostModel(c).LinearFlopsPerToken());
}

}  // namespace
}  // namespace sf
