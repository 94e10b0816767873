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
  struct Shape {
    std::string_view name;
    int64_t hidden, intermediate, layers, heads, kv_heads;
  };
  static constexpr Shape kShapes[] = {{"qwen2.5-7b", 3584, 18944, 28, 28, 4},
                                      {"qwen2.5-32b", 5120, 27648, 64, 40, 8},
                                      {"qwen2.5-72b", 8192, 29568, 80, 64, 8}};
  for (const Shape& shape : kShapes) {
    if (shape.name != name) continue;
    if (layers < 0 || layers > shape.layers) {
      return absl::InvalidArgumentError(absl::StrCat(layers, " layers: ", std::string(name),
                                                     " has ", shape.layers, " layers (0 = all)"));
    }
    ModelConfig c;
    c.architecture = Architecture::kQwen2;
    c.vocab_size = 152064;
    c.hidden_size = shape.hidden;
    c.intermediate_size = shape.intermediate;
    c.num_layers = layers > 0 ? layers : shape.layers;
    c.num_heads = shape.heads;
    c.num_kv_heads = shape.kv_heads;
    c.head_dim = 128;
    c.max_position_embeddings = 131072 + 1024;
    c.rms_norm_eps = 1e-6;
    c.rope_theta = 1000000.0;
    c.qkv_bias = true;
    return c;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "shape '", std::string(name), "': known shapes are qwen2.5-7b, qwen2.5-32b and qwen2.5-72b"));
}

}  // namespace sf::model

#endif  // SF_COMMON_QWEN25_SHAPES_H_
