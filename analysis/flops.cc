#include "analysis/flops.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "methods/registry.h"

namespace sf::analysis {

namespace {
ModelShape Qwen(int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads,
                int64_t intermediate) {
  ModelShape s;
  s.hidden_size = hidden;
  s.num_layers = layers;
  s.num_heads = heads;
  s.num_kv_heads = kv_heads;
  s.head_dim = 128;
  s.intermediate_size = intermediate;
  s.vocab_size = 152064;
  s.qkv_bias = true;
  s.tie_word_embeddings = false;
  return s;
}

}  // namespace

ModelShape Qwen25_7B() { return Qwen(3584, 28, 28, 4, 18944); }
ModelShape Qwen25_14B() { return Qwen(5120, 48, 40, 8, 13824); }
ModelShape Qwen25_32B() { return Qwen(5120, 64, 40, 8, 27648); }
ModelShape Qwen25_72B() { return Qwen(8192, 80, 64, 8, 29568); }

double LinearParams(const ModelShape& s) {
  return static_cast<double>(model::CountParameters(s).Matmul());
}

double TotalParams(const ModelShape& s) {
  return static_cast<double>(model::CountParameters(s).Total());
}

absl::StatusOr<double> EstimationFlops(absl::string_view method, const ModelShape& s,
                                       int64_t seq_len, int64_t decode_tokens,
                                       const EstimationSettings& e) {
  EstimationInput in;
  in.pair_flops = 2.0 * static_cast<double>(s.num_layers * s.num_heads * s.head_dim);
  in.seq_len = seq_len;
  in.decode_tokens = decode_tokens;
  in.settings = e;
  return ::sf::EstimationFlops(method, in);
}

FlopsBreakdown ComputeFlops(const ModelShape& s, int64_t seq_len, int64_t decode_steps,
                            double prefill_compression, double decode_compression,
                            double indexing) {
  const model::CostModel cost(s);
  const double lin = 2.0 * LinearParams(s);
  FlopsBreakdown f;
  f.prefill_linear = lin * static_cast<double>(seq_len);
  f.prefill_attention = cost.FlopsPerPair() * cost.DensePrefillPairs(seq_len) / prefill_compression;
  f.decode_linear = lin * static_cast<double>(decode_steps);
  // decode_steps steps are what decode_steps + 1 output tokens take (the first comes
  // from the prefill's logits).
  f.decode_attention =
      cost.FlopsPerPair() * cost.DenseDecodePairs(seq_len, decode_steps + 1) / decode_compression;
  f.indexing = indexing;
  return f;
}

}  // namespace sf::analysis
