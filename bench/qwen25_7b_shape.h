// Qwen2.5-7B's architecture (its config.json) for the GPU engine benches, which build it
// with random weights on the device.
#ifndef SF_BENCH_QWEN25_7B_SHAPE_H_
#define SF_BENCH_QWEN25_7B_SHAPE_H_

#include <cstdint>

#include "common/model_config.h"

namespace sf::bench {

// `layers` of its 28 (0 = all 28); every other field as released.
inline model::ModelConfig Qwen25_7BShape(int64_t layers) {
  model::ModelConfig c;
  c.architecture = model::Architecture::kQwen2;
  c.vocab_size = 152064;
  c.hidden_size = 3584;
  c.intermediate_size = 18944;
  c.num_layers = layers > 0 ? layers : 28;
  c.num_heads = 28;
  c.num_kv_heads = 4;
  c.head_dim = 128;
  c.max_position_embeddings = 131072 + 1024;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 1000000.0;
  c.qkv_bias = true;
  return c;
}

}  // namespace sf::bench

#endif  // SF_BENCH_QWEN25_7B_SHAPE_H_
