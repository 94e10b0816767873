#include "common/model_cost.h"

#include <algorithm>

namespace sf::model {

ParameterCounts CountParameters(const ModelShape& s) {
  const int64_t q = s.num_heads * s.head_dim;
  const int64_t kv = s.num_kv_heads * s.head_dim;
  const int64_t attention = s.hidden_size * q + 2 * s.hidden_size * kv + q * s.hidden_size +
                            (s.qkv_bias ? q + 2 * kv : 0) + (s.o_bias ? s.hidden_size : 0);
  const int64_t mlp = 3 * s.hidden_size * s.intermediate_size +
                      (s.mlp_bias ? 2 * s.intermediate_size + s.hidden_size : 0);
  ParameterCounts p;
  p.embedding = s.vocab_size * s.hidden_size;
  p.lm_head = s.tie_word_embeddings ? 0 : s.vocab_size * s.hidden_size;
  p.attention = s.num_layers * attention;
  p.mlp = s.num_layers * mlp;
  p.norms = (2 * s.num_layers + 1) * s.hidden_size;
  return p;
}

CostModel::CostModel(const ModelShape& shape)
    : linear_per_token_(2.0 * static_cast<double>(CountParameters(shape).PerToken())),
      flops_per_pair_(4.0 * static_cast<double>(shape.head_dim)),
      heads_per_token_(static_cast<double>(shape.num_layers * shape.num_heads)) {}

double CostModel::DensePrefillPairs(int64_t prompt_tokens) const {
  const double l = static_cast<double>(prompt_tokens);
  return heads_per_token_ * (l * (l + 1.0) / 2.0);
}

double CostModel::DenseDecodePairs(int64_t prompt_tokens, int64_t output_tokens) const {
  const double l = static_cast<double>(prompt_tokens);
  const double steps = static_cast<double>(std::max<int64_t>(0, output_tokens - 1));
  // sum_{s=0}^{steps-1} (L + s + 1) = steps L + steps (steps + 1) / 2
  return heads_per_token_ * (steps * l + steps * (steps + 1.0) / 2.0);
}

FlopsBreakdown CostModel::Measured(double prompt_tokens, double output_tokens, double prefill_pairs,
                                   double decode_pairs, double indexing) const {
  FlopsBreakdown f;
  f.prefill_linear = linear_per_token_ * prompt_tokens;
  f.prefill_attention = flops_per_pair_ * prefill_pairs;
  f.decode_linear = linear_per_token_ * output_tokens;
  f.decode_attention = flops_per_pair_ * decode_pairs;
  f.indexing = indexing;
  return f;
}

FlopsBreakdown CostModel::Nominal(int64_t prompt_tokens, int64_t output_tokens,
                                  double prefill_compression, double decode_compression,
                                  double indexing) const {
  return Measured(static_cast<double>(prompt_tokens), static_cast<double>(output_tokens),
                  DensePrefillPairs(prompt_tokens) / prefill_compression,
                  DenseDecodePairs(prompt_tokens, output_tokens) / decode_compression, indexing);
}

}  // namespace sf::model
