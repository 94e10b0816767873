// What every backend's Prefill and Decode share: one Forward pass over new tokens,
// timed and counted the same way, so the backends' counters mean the same thing.
#ifndef SF_WORKER_MODEL_FORWARD_ENGINE_H_
#define SF_WORKER_MODEL_FORWARD_ENGINE_H_

#include <chrono>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/status.h"
#include "worker/model/engine.h"

namespace sf::model {

class ForwardEngine : public Engine {
 public:
  absl::StatusOr<std::vector<float>> Prefill(absl::Span<const TokenId> tokens,
                                             bool all_positions) final {
    const auto start = std::chrono::steady_clock::now();
    SF_ASSIGN_OR_RETURN(std::vector<float> logits,
                        Forward(tokens, all_positions, AttentionPhase::kPrefill));
    counters_.prefill_seconds += SecondsSince(start);
    counters_.tokens_prefilled += static_cast<int64_t>(tokens.size());
    return logits;
  }

  absl::StatusOr<std::vector<float>> Decode(TokenId token) final {
    const auto start = std::chrono::steady_clock::now();
    const TokenId one[1] = {token};
    SF_ASSIGN_OR_RETURN(std::vector<float> logits, Forward(one, false, AttentionPhase::kDecode));
    counters_.decode_seconds += SecondsSince(start);
    counters_.tokens_decoded += 1;
    return logits;
  }

  const EngineCounters& counters() const final { return counters_; }

 protected:
  // Runs `tokens` after the cached ones; the logits of the last position, or of every
  // position with `all_positions`. Adds its attention statistics to counters_.
  virtual absl::StatusOr<std::vector<float>> Forward(absl::Span<const TokenId> tokens,
                                                     bool all_positions, AttentionPhase phase) = 0;

  EngineCounters counters_;

 private:
  static double SecondsSince(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

}  // namespace sf::model

#endif  // SF_WORKER_MODEL_FORWARD_ENGINE_H_
