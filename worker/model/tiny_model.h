// Writes tiny random models in real Hugging Face format (config.json,
// model.safetensors or shards with an index, generation_config.json, and optionally a
// copied tokenizer.json) for every supported architecture: the test fixture for the
// engine and everything above it; no committed weights needed.
#ifndef SF_WORKER_MODEL_TINY_MODEL_H_
#define SF_WORKER_MODEL_TINY_MODEL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "worker/model/dtype.h"

namespace sf::model {

struct TinyModelOptions {
  Architecture architecture = Architecture::kLlama;
  int64_t vocab_size = 512;  // 0 with a tokenizer: the tokenizer's vocabulary size
  int64_t hidden_size = 64;
  int64_t intermediate_size = 128;
  int64_t num_layers = 2;
  int64_t num_heads = 4;
  int64_t num_kv_heads = 2;
  int64_t head_dim = 0;  // 0: hidden_size / num_heads (not written to config.json)
  int64_t max_position_embeddings = 4096;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  RopeScaling rope;  // kDefault: rope_scaling null
  bool tie_word_embeddings = false;
  DType dtype = DType::kBF16;  // kBF16, kF16 or kF32
  // config.json as transformers 5.x writes it (rope_parameters, dtype) instead of 4.x
  // (rope_theta, rope_scaling, torch_dtype).
  bool transformers5_config = false;
  int num_shards = 1;  // > 1: model-0000i-of-0000n.safetensors + index
  uint64_t seed = 1;
  double init_std = 0.02;              // weights ~ N(0, init_std); norms ~ 1 + N(0, 0.1)
  std::vector<TokenId> eos_token_ids;  // empty: guessed from the tokenizer, else {vocab - 1}
  TokenId bos_token_id = -1;           // -1: none
  std::string tokenizer_json;          // a tokenizer.json to copy (and tokenizer_config.json
                                       // beside it, when present); empty: none
};

// Writes the model into `dir` (created if missing; existing model files are
// replaced). InvalidArgument for inconsistent sizes or an unreadable tokenizer.
absl::Status WriteTinyModel(const std::string& dir, const TinyModelOptions& options);

// config.json text for `options` (after defaults are resolved by WriteTinyModel).
std::string TinyModelConfigJson(const TinyModelOptions& options);

// Vocabulary size of a tokenizer.json (largest id in model.vocab and added_tokens,
// plus one) and its likely end-of-sequence ids (added tokens such as <|eot_id|>,
// <|im_end|>, <|endoftext|>, </s>).
struct TokenizerFacts {
  int64_t vocab_size = 0;
  std::vector<TokenId> eos_ids;
};
absl::StatusOr<TokenizerFacts> ReadTokenizerFacts(const std::string& tokenizer_json_path);

}  // namespace sf::model

#endif  // SF_WORKER_MODEL_TINY_MODEL_H_
