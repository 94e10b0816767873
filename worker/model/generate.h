// Greedy generation over an Engine: prefill the prompt, then decode one token at a
// time with the KV cache until a stop token or max_new_tokens.
#ifndef SF_WORKER_MODEL_GENERATE_H_
#define SF_WORKER_MODEL_GENERATE_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/tokenizer.h"
#include "worker/model/engine.h"

namespace sf::model {

struct GenerationOptions {
  int64_t max_new_tokens = 32;
  // Tokens that end generation (included in the output, as transformers does).
  // Empty: the model's eos ids (generation_config.json, else config.json).
  std::vector<TokenId> stop_tokens;
  // Ignore stop tokens and always produce max_new_tokens.
  bool ignore_eos = false;
};

struct GenerationResult {
  std::vector<TokenId> tokens;  // generated tokens only
  bool stopped = false;         // ended on a stop token
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

// Resets `engine`, prefills `prompt` and decodes greedily. InvalidArgument for an
// empty prompt or max_new_tokens < 0; engine errors pass through with context.
absl::StatusOr<GenerationResult> GenerateGreedy(Engine& engine, absl::Span<const TokenId> prompt,
                                                const GenerationOptions& options);

}  // namespace sf::model

#endif  // SF_WORKER_MODEL_GENERATE_H_
