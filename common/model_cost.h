// The one parameter count and the one cost model (FLOPs per sample) of a model shape.
// The worker records its results with it, the spec orders jobs by it and the analysis
// falls back on it for results that carry no recorded figures, so all three agree.
// docs/analysis.md ("FLOPs model") gives the formulas and why decode counts as it does.
#ifndef SF_COMMON_MODEL_COST_H_
#define SF_COMMON_MODEL_COST_H_

#include <cstdint>

#include "common/model_config.h"

namespace sf::model {

// A shape's weights by part.
struct ParameterCounts {
  int64_t embedding = 0;  // input token embedding, vocab x hidden
  int64_t lm_head = 0;    // vocab x hidden; 0 when tied to the embedding
  int64_t attention = 0;  // q/k/v/o projections and their biases, all layers
  int64_t mlp = 0;        // gate/up/down projections and their biases, all layers
  int64_t norms = 0;      // RMSNorm weights: two per layer and the final one

  // Every weight: the scaling law's N (7615616512 for Qwen2.5-7B).
  int64_t Total() const { return embedding + lm_head + attention + mlp + norms; }
  // The matrices multiplied per token: attention, MLP and the LM head (the embedding
  // matrix when tied). Biases are in; norms and the embedding lookup are not.
  int64_t Matmul() const { return attention + mlp + (lm_head > 0 ? lm_head : embedding); }
  // What the cost model charges 2 FLOPs per token for: every weight a token meets, that
  // is all but the embedding lookup (Matmul() plus the norm weights).
  int64_t PerToken() const { return Matmul() + norms; }
};

ParameterCounts CountParameters(const ModelShape& shape);

// FLOPs by phase: of one sample, or summed over samples.
struct FlopsBreakdown {
  double prefill_linear = 0.0;
  double prefill_attention = 0.0;
  double decode_linear = 0.0;
  double decode_attention = 0.0;
  double indexing = 0.0;  // the method's estimation (choosing what to attend to / keep)

  double Prefill() const { return prefill_linear + prefill_attention; }
  double Decode() const { return decode_linear + decode_attention; }
  double Total() const { return Prefill() + Decode() + indexing; }
};

// The cost model:
// - linear: 2 x ParameterCounts::PerToken() FLOPs per token, over the prompt's tokens in
//   prefill and the output tokens in decode;
// - attention: 4 x head_dim FLOPs (q.k and the weighted sum of values, 2 FLOPs per
//   multiply-add) per pair of one layer's query head, one query and one key computed;
// - indexing: the method's estimation FLOPs, added as given.
// A greedy generation of T output tokens after an L-token prompt takes the first token
// from the prefill's logits and feeds the other T - 1 back: decode step s (0-based)
// attends to the L + s + 1 cached tokens, and the last output token is never fed back.
// Thread-safe (immutable).
class CostModel {
 public:
  explicit CostModel(const ModelShape& shape);

  double LinearFlopsPerToken() const { return linear_per_token_; }
  double FlopsPerPair() const { return flops_per_pair_; }

  // Pairs dense causal attention computes over every layer and query head: the prompt
  // attending to itself, L (L + 1) / 2 per head...
  double DensePrefillPairs(int64_t prompt_tokens) const;
  // ...and the T - 1 fed-back output tokens attending to the cache,
  // (T - 1) L + T (T - 1) / 2 per head (0 for T <= 1).
  double DenseDecodePairs(int64_t prompt_tokens, int64_t output_tokens) const;

  // FLOPs from what ran: token counts and the attention pairs the method computed (as
  // the engine counts them, over every layer and query head), summed over any number of
  // samples. This is what the worker records.
  FlopsBreakdown Measured(double prompt_tokens, double output_tokens, double prefill_pairs,
                          double decode_pairs, double indexing) const;

  // FLOPs of one sample from its sizes: dense pairs divided by each phase's compression.
  // REQUIRES: compressions >= 1, prompt_tokens >= 1, output_tokens >= 0.
  FlopsBreakdown Nominal(int64_t prompt_tokens, int64_t output_tokens, double prefill_compression,
                         double decode_compression, double indexing) const;

 private:
  double linear_per_token_;
  double flops_per_pair_;
  double heads_per_token_;  // layers x query heads
};

}  // namespace sf::model

#endif  // SF_COMMON_MODEL_COST_H_
