// The model description the engine needs, parsed from a Hugging Face config.json
// (transformers 4.x and 5.x spellings) and generation_config.json, plus RoPE
// scaling (default, linear, llama3, yarn) and the study's YaRN rule.
#ifndef SF_WORKER_MODEL_MODEL_CONFIG_H_
#define SF_WORKER_MODEL_MODEL_CONFIG_H_

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

struct ModelConfig {
  Architecture architecture = Architecture::kLlama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2 always; Llama with attention_bias
  bool o_bias = false;    // Llama with attention_bias
  bool mlp_bias = false;  // Llama with mlp_bias
  // Mistral's sliding window when the config sets one; the engine refuses sequences
  // longer than it (it computes full causal attention).
  std::optional<int64_t> sliding_window;
  std::string torch_dtype = "float32";  // the weights' declared dtype
  std::optional<TokenId> bos_token_id;
  std::vector<TokenId> eos_token_ids;  // from generation_config.json, else config.json
  // `"sf_random_weights": true` in config.json: a generated model (sfctl
  // make-tiny-model) whose outputs, and so whose scores, carry no meaning.
  bool random_weights = false;

  int64_t NumQueryGroups() const { return num_heads / num_kv_heads; }
  // Parameters of the weights (embeddings and lm_head counted once when tied).
  int64_t NumParameters() const;
};

// Parses config.json text. `source` names the file in errors. InvalidArgument for a
// missing/invalid field, an unsupported architecture or rope type (naming it and
// what is supported).
absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view json_text, absl::string_view source);

// Reads eos_token_id (an int or a list) and bos_token_id from generation_config.json
// text into `config`, replacing config.json's eos ids when present.
absl::Status ApplyGenerationConfig(absl::string_view json_text, absl::string_view source,
                                   ModelConfig* config);

// Reads DIR/config.json and, when present, DIR/generation_config.json.
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

#endif  // SF_WORKER_MODEL_MODEL_CONFIG_H_
