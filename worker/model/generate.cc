#include "worker/model/generate.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace sf::model {

absl::StatusOr<GenerationResult> GenerateGreedy(Engine& engine, absl::Span<const TokenId> prompt,
                                                const GenerationOptions& options) {
  if (prompt.empty()) return absl::InvalidArgumentError("generation needs a non-empty prompt");
  if (options.max_new_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_new_tokens is ", options.max_new_tokens, ", expected >= 0"));
  }
  const std::vector<TokenId>& stops =
      options.stop_tokens.empty() ? engine.config().eos_token_ids : options.stop_tokens;
  GenerationResult result;
  engine.Reset();
  using Clock = std::chrono::steady_clock;
  auto start = Clock::now();
  absl::StatusOr<std::vector<float>> logits = engine.Prefill(prompt);
  if (!logits.ok()) {
    return Annotate(logits.status(), absl::StrCat("prefill of ", prompt.size(), " tokens"));
  }
  result.prefill_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  start = Clock::now();
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    const TokenId next = ArgMax(*logits);
    result.tokens.push_back(next);
    if (!options.ignore_eos && std::find(stops.begin(), stops.end(), next) != stops.end()) {
      result.stopped = true;
      break;
    }
    if (step + 1 == options.max_new_tokens) break;
    logits = engine.Decode(next);
    if (!logits.ok()) {
      return Annotate(logits.status(), absl::StrCat("decode step ", step + 1));
    }
  }
  result.decode_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace sf::model
