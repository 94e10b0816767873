// What the spec needs to know about a Hugging Face model folder without loading it: its
// identity for job keys (hash of config.json and tokenizer files plus weight file names
// and sizes, not a checksum of the weights) and its config, which sizes memory and cost.
#ifndef SF_COMMON_MODEL_IDENTITY_H_
#define SF_COMMON_MODEL_IDENTITY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/model_config.h"

namespace sf {

struct ModelInfo {
  std::string identity;       // 64 hex characters
  model::ModelConfig config;  // config.json (common/model_config.h)
  int64_t weight_bytes = 0;   // sum of *.safetensors sizes, or from the shape if none
  int64_t parameters = 0;     // every weight of the shape (embeddings included)
};

// Reads `folder`: NotFound if it or its config.json is missing, InvalidArgument if the
// config is malformed (model::ParseModelConfig's errors). The identity covers config.json,
// tokenizer.json, tokenizer_config.json and generation_config.json bytes (those present) and the
// names and sizes of *.safetensors files, so renaming or re-sharding weights changes it while
// moving the folder does not.
absl::StatusOr<ModelInfo> InspectModel(const std::string& folder);

// Estimated peak bytes on one worker for a job: weights + KV cache
// (2 x layers x kv_heads x head_dim x (L + new tokens) x dtype bytes) + activations of a
// prefill over L tokens in fp32 (residual, attention output, MLP intermediate, one layer at a
// time) + logits of one position. Conservative: KV eviction is not subtracted.
int64_t EstimateMemoryBytes(const ModelInfo& model, int64_t sequence_length,
                            int64_t max_new_tokens);

// Relative run time of one sample, in FLOPs: the cost model (common/model_cost.h) of a
// prompt of `sequence_length` tokens and `max_new_tokens` output tokens, dense attention
// pairs divided by each phase's compression, no indexing. Only the ordering matters
// (longest first).
double EstimateSampleFlops(const ModelInfo& model, int64_t sequence_length, int64_t max_new_tokens,
                           double prefill_compression, double decode_compression);

}  // namespace sf

#endif  // SF_COMMON_MODEL_IDENTITY_H_
