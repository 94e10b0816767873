// Qwen2.5's released architectures (their config.json), for the benches that build them
// with random weights and the tests that size, place or split them.
#ifndef SF_COMMON_QWEN25_SHAPES_H_
#define SF_COMMON_QWEN25_SHAPES_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/model_config.h"

namespace sf::model {

// The shape called `name` ("qwen2.5-7b": 28 layers, hidden 3584, 28 / 4 heads, intermediate
// 18944; "qwen2.5-32b": 64 layers, hidden 5120, 40 / 8 heads, intermediate 27648;
// "qwen2.5-72b": 80 layers, hidden 8192, 64 / 8 heads, intermediate 29568; all head dim 128,
// vocabulary 152064, q/k/v biases), cut to `layers` of its layers (0 = all); every other
// field as released. InvalidArgument names the shapes it knows.
inline absl::StatusOr<ModelConfig> Qwen25Shape(std::string_view name, int64_t layers) {
  ModelConfig c;
  c.architecture = Architecture::kQwen2;
  c.vocab_size = 152064;
  c.head_dim = 128;
  c.max_position_embeddings = 131072 + 1024;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 1000000.0;
  c.qkv_bias = true;
  int64_t all_layers = 0;
  if (name == "qwen2.5-7b") {
    c.hidden_size = 3584;
    c.intermediate_size = 18944;
    all_layers = 28;
    c.num_heads = 28;
    c.num_kv_heads = 4;
  } else if (name == "qwen2.5-32b") {
    c.hidden_size = 5120;
    c.intermediate_size = 27648;
    all_layers = 64;
    c.num_heads = 40;
    c.num_kv_heads = 8;
  } else if (name == "qwen2.5-72b") {
    c.hidden_size = 8192;
    c.intermediate_size = 29568;
    all_layers = 80;
    c.num_heads = 64;
    c.num_kv_heads = 8;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("shape '", std::string(name),
                                                   "': known shapes are qwen2.5-7b, qwen2.5-32b "
                                                   "and qwen2.5-72b"));
  }
  if (layers < 0 || layers > all_layers) {
    return absl::InvalidArgumentError(absl::StrCat(layers, " layers: ", std::string(name), " has ",
                                                   all_layers, " layers (0 = all)"));
  }
  c.num_layers = layers > 0 ? layers : all_layers;
  return c;
}

}  // namespace sf::model

#endif  // SF_COMMON_QWEN25_SHAPES_H_
