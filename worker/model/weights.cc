#include "worker/model/weights.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace sf::model {
namespace {

// Reads `name` as float32 [rows][cols] (or [rows] when cols == 0) and appends it to
// `dst`.
absl::Status AppendTensor(const Checkpoint& ckpt, const std::string& name, int64_t rows,
                          int64_t cols, std::vector<float>* dst) {
  std::vector<int64_t> shape = {rows};
  if (cols > 0) shape.push_back(cols);
  SF_ASSIGN_OR_RETURN(std::vector<float> data, ckpt.ReadFloat(name, shape));
  dst->insert(dst->end(), data.begin(), data.end());
  return absl::OkStatus();
}

// Stacks the projections `parts` (each [out_i][in]) into one Linear; biases too when
// `with_bias`.
absl::StatusOr<Linear> LoadStacked(const Checkpoint& ckpt, const std::string& prefix,
                                   const std::vector<std::pair<std::string, int64_t>>& parts,
                                   int64_t in, bool with_bias) {
  Linear lin;
  lin.in = in;
  for (const auto& [name, out] : parts) {
    SF_RETURN_IF_ERROR(AppendTensor(ckpt, prefix + name + ".weight", out, in, &lin.weight));
    if (with_bias)
      SF_RETURN_IF_ERROR(AppendTensor(ckpt, prefix + name + ".bias", out, 0, &lin.bias));
    lin.out += out;
  }
  return lin;
}

}  // namespace

absl::StatusOr<ModelWeights> LoadModelWeights(const Checkpoint& ckpt, const ModelConfig& c) {
  ModelWeights w;
  const int64_t H = c.hidden_size, d = c.head_dim, I = c.intermediate_size;
  SF_RETURN_IF_ERROR(AppendTensor(ckpt, "model.embed_tokens.weight", c.vocab_size, H, &w.embed));
  w.layers.resize(static_cast<size_t>(c.num_layers));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    LayerWeights& L = w.layers[static_cast<size_t>(i)];
    SF_RETURN_IF_ERROR(AppendTensor(ckpt, p + "input_layernorm.weight", H, 0, &L.input_norm));
    SF_RETURN_IF_ERROR(
        AppendTensor(ckpt, p + "post_attention_layernorm.weight", H, 0, &L.post_norm));
    SF_ASSIGN_OR_RETURN(L.qkv, LoadStacked(ckpt, p + "self_attn.",
                                           {{"q_proj", c.num_heads * d},
                                            {"k_proj", c.num_kv_heads * d},
                                            {"v_proj", c.num_kv_heads * d}},
                                           H, c.qkv_bias));
    SF_ASSIGN_OR_RETURN(
        L.o, LoadStacked(ckpt, p + "self_attn.", {{"o_proj", H}}, c.num_heads * d, c.o_bias));
    SF_ASSIGN_OR_RETURN(L.gate_up, LoadStacked(ckpt, p + "mlp.", {{"gate_proj", I}, {"up_proj", I}},
                                               H, c.mlp_bias));
    SF_ASSIGN_OR_RETURN(L.down, LoadStacked(ckpt, p + "mlp.", {{"down_proj", H}}, I, c.mlp_bias));
  }
  SF_RETURN_IF_ERROR(AppendTensor(ckpt, "model.norm.weight", H, 0, &w.final_norm));
  w.lm_head.in = H;
  w.lm_head.out = c.vocab_size;
  if (!c.tie_word_embeddings) {
    SF_RETURN_IF_ERROR(AppendTensor(ckpt, "lm_head.weight", c.vocab_size, H, &w.lm_head.weight));
  }
  return w;
}

}  // namespace sf::model
