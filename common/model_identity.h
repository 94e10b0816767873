// What the spec needs to know about a Hugging Face model folder without loading it: its
// identity for job keys (hash of config.json and tokenizer files plus weight file names
// and sizes, not a checksum of the weights) and the shapes that size memory and cost.
#ifndef SF_COMMON_MODEL_IDENTITY_H_
#define SF_COMMON_MODEL_IDENTITY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sf {

// The fields of config.json the estimates use.
struct ModelShape {
  int64_t layers = 0;           // num_hidden_layers
  int64_t hidden = 0;           // hidden_size
  int64_t heads = 0;            // num_attention_heads
  int64_t kv_heads = 0;         // num_key_value_heads (default: heads)
  int64_t head_dim = 0;         // head_dim (default: hidden / heads)
  int64_t intermediate = 0;     // intermediate_size
  int64_t vocab = 0;            // vocab_size
  int64_t dtype_bytes = 2;      // torch_dtype: bfloat16/float16 2, float32 4
  bool tie_embeddings = false;  // tie_word_embeddings
};

struct ModelInfo {
  std::string identity;  // 64 hex characters
  ModelShape shape;
  int64_t weight_bytes = 0;  // sum of *.safetensors sizes, or from the shape if none
  int64_t parameters = 0;    // from the shape (embeddings included)
};

// Parses config.json text. `source` names the file in errors. Missing required fields
// (num_hidden_layers, hidden_size, num_attention_heads, intermediate_size, vocab_size)
// give InvalidArgument naming the field; optional ones take their Hugging Face defaults.
absl::StatusOr<ModelShape> ParseModelConfig(absl::string_view json_text, absl::string_view source);

// Parameters implied by a shape (attention, MLP, norms ignored, embeddings and lm_head).
int64_t ParameterCount(const ModelShape& shape);

// Reads `folder`: NotFound if it or its config.json is missing, InvalidArgument if the
// config is malformed. The identity covers config.json, tokenizer.json,
// tokenizer_config.json and generation_config.json bytes (those present) and the names and
// sizes of *.safetensors files, so renaming or re-sharding weights changes it while moving
// the folder does not.
absl::StatusOr<ModelInfo> InspectModel(const std::string& folder);

// Estimated peak bytes on one worker for a job: weights + KV cache
// (2 x layers x kv_heads x head_dim x (L + new tokens) x dtype bytes) + activations of a
// prefill over L tokens in fp32 (residual, attention output, MLP intermediate, one layer at a
// time) + logits of one position. Conservative: KV eviction is not subtracted.
int64_t EstimateMemoryBytes(const ModelInfo& model, int64_t sequence_length,
                            int64_t max_new_tokens);

// Relative run time of one sample, in FLOPs: linear layers 2 x parameters per token over
// L + new tokens, attention 4 x layers x heads x head_dim x query-key pairs, where prefill
// pairs are L(L+1)/2 divided by `prefill_compression` and each decoded token's pairs are L
// divided by `decode_compression`. Only the ordering matters (longest first).
double EstimateSampleFlops(const ModelInfo& model, int64_t sequence_length, int64_t max_new_tokens,
                           double prefill_compression, double decode_compression);

}  // namespace sf

#endif  // SF_COMMON_MODEL_IDENTITY_H_
