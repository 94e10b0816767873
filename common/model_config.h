// The one description of a model: its shape (what sizes memory and cost) and the rest of
// what the engine needs, parsed from a Hugging Face config.json (transformers 4.x and 5.x
// spellings) and generation_config.json, plus RoPE scaling (default, linear, llama3, yarn)
// and the study's YaRN rule. The spec, the engine, the worker and the analysis all use it;
// it links no engine code.
#ifndef SF_COMMON_MODEL_CONFIG_H_
#define SF_COMMON_MODEL_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tokenizer.h"

namespace sf::model {

enum class Architecture { kLlama, kQwen2, kMistral };

// "LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM".
absl::string_view ArchitectureName(Architecture arch);
// Accepts the HF class names above and the short names "llama", "qwen2", "mistral".
absl::StatusOr<Architecture> ParseArchitecture(absl::string_view name);

enum class RopeType { kDefault, kLinear, kLlama3, kYarn };
absl::string_view RopeTypeName(RopeType type);

// RoPE parameters, with transformers' defaults for fields a config leaves out.
struct RopeScaling {
  RopeType type = RopeType::kDefault;
  double factor = 1.0;                           // linear, llama3, yarn
  double low_freq_factor = 1.0;                  // llama3
  double high_freq_factor = 4.0;                 // llama3
  int64_t original_max_position_embeddings = 0;  // llama3, yarn (0: max_position_embeddings)
  std::optional<double> attention_factor;        // yarn
  double beta_fast = 32.0;                       // yarn
  double beta_slow = 1.0;                        // yarn
  std::optional<double> mscale;                  // yarn
  std::optional<double> mscale_all_dim;          // yarn
  bool truncate = true;                          // yarn: floor/ceil the correction range
};

// A model's shape: the sizes that set its parameter count, memory and FLOPs. Results
// record it (sf.v1.ModelShape on the wire, proto/model_shape_convert.h), so the analysis
// needs no model files.
struct ModelShape {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;     // query heads
  int64_t num_kv_heads = 0;  // key/value heads (GQA)
  int64_t head_dim = 0;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2 always; Llama with attention_bias
  bool o_bias = false;    // Llama with attention_bias
  bool mlp_bias = false;  // Llama with mlp_bias

  int64_t NumQueryGroups() const { return num_heads / num_kv_heads; }
  // Every weight (embeddings and lm_head counted once when tied): CountParameters(*this)
  // .Total() of common/model_cost.h.
  int64_t NumParameters() const;
};

// Everything else the engine needs from config.json and generation_config.json.
struct ModelConfig : ModelShape {
  Architecture architecture = Architecture::kLlama;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope;
  // Mistral's sliding window when the config sets one; the engine refuses sequences
  // longer than it (it computes full causal attention).
  std::optional<int64_t> sliding_window;
  // The weights' declared dtype (`dtype`, else `torch_dtype`): float32 (the default),
  // bfloat16 or float16.
  std::string torch_dtype = "float32";
  std::optional<TokenId> bos_token_id;
  std::vector<TokenId> eos_token_ids;  // from generation_config.json, else config.json
  // `"sf_random_weights": true` in config.json: a generated model (sfctl
  // make-tiny-model) whose outputs, and so whose scores, carry no meaning.
  bool random_weights = false;

  // Bytes per weight of torch_dtype: 2 for bfloat16/float16, 4 for float32.
  int64_t DtypeBytes() const;
};

// Parses config.json text. `source` names the file in errors. InvalidArgument for a
// missing/invalid field, an unsupported architecture, rope type or dtype (naming it and
// what is supported). Optional fields take their Hugging Face defaults
// (num_key_value_heads = num_attention_heads, head_dim = hidden_size / heads, ...).
absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view json_text, absl::string_view source);

// Reads eos_token_id (an int or a list) and bos_token_id from generation_config.json
// text into `config`, replacing config.json's eos ids when present.
absl::Status ApplyGenerationConfig(absl::string_view json_text, absl::string_view source,
                                   ModelConfig* config);

// Reads DIR/config.json and, when present, DIR/generation_config.json. NotFound when
// config.json cannot be read; the parser's errors otherwise.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir);

// The study's rule: when input + output tokens exceed 32768, YaRN with factor
// (input + output) / 32768 and original_max_position_embeddings 32768; otherwise
// nullopt (keep the model's own RoPE).
inline constexpr int64_t kStudyYarnOriginalPositions = 32768;
std::optional<RopeScaling> StudyYarnScaling(int64_t input_tokens, int64_t output_tokens);
// Applies StudyYarnScaling to `config` when it returns a value (the model's own
// scaling is replaced, as the study did). Returns whether it changed the config.
bool ApplyStudyYarnRule(int64_t input_tokens, int64_t output_tokens, ModelConfig* config);

// The rotary embedding: inverse frequencies (head_dim / 2 of them) and the factor
// applied to cos and sin (YaRN's attention scaling; 1 otherwise), computed as
// transformers' ROPE_INIT_FUNCTIONS do.
struct RopeTable {
  std::vector<float> inv_freq;
  float attention_scaling = 1.0f;
};
absl::StatusOr<RopeTable> ComputeRope(const ModelConfig& config);

}  // namespace sf::model

#endif  // SF_COMMON_MODEL_CONFIG_H_
