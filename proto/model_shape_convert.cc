#include "proto/model_shape_convert.h"

namespace sf {

v1::ModelShape ModelShapeToProto(const model::ModelConfig& config) {
  v1::ModelShape m;
  m.set_hidden(config.hidden_size);
  m.set_layers(config.num_layers);
  m.set_heads(config.num_heads);
  m.set_kv_heads(config.num_kv_heads);
  m.set_head_dim(config.head_dim);
  m.set_intermediate(config.intermediate_size);
  m.set_vocab(config.vocab_size);
  m.set_qkv_bias(config.qkv_bias);
  m.set_tied_embeddings(config.tie_word_embeddings);
  m.set_params(config.NumParameters());
  m.set_random_weights(config.random_weights);
  return m;
}

model::ModelShape ModelShapeFromProto(const v1::ModelShape& m) {
  model::ModelShape s;
  s.hidden_size = m.hidden();
  s.num_layers = m.layers();
  s.num_heads = m.heads();
  s.num_kv_heads = m.kv_heads();
  s.head_dim = m.head_dim();
  s.intermediate_size = m.intermediate();
  s.vocab_size = m.vocab();
  s.qkv_bias = m.qkv_bias();
  s.tie_word_embeddings = m.tied_embeddings();
  return s;
}

}  // namespace sf
