#include "analysis/flops.h"

#include <cmath>

#include "absl/strings/str_cat.h"

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

double CeilDiv(double a, double b) { return std::ceil(a / b); }
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
  const double per_pair = 2.0 * static_cast<double>(s.num_layers * s.num_heads * s.head_dim);
  const double l = static_cast<double>(seq_len);
  if (method == "dense" || method == "streaming") return 0.0;  // nothing to estimate
  if (method == "snapkv" || method == "ada_snapkv") {
    // The observation window's queries scored against every prompt key, once after
    // prefill: fused attention kernels never materialise those probabilities, so the
    // method computes them again (as the worker records it).
    const double w = std::min<double>(static_cast<double>(e.snapkv_window), l);
    return per_pair * w * l;
  }
  if (method == "vertical_slash") {
    const double q = std::min<double>(static_cast<double>(e.vs_last_q), l);
    return per_pair * q * l;
  }
  if (method == "flexprefill") {
    const double q = std::min<double>(static_cast<double>(e.flex_last_block), l);
    return per_pair * q * l;
  }
  if (method == "block_sparse") {
    const double nb = CeilDiv(l, static_cast<double>(e.block));
    return per_pair * nb * (nb + 1.0) / 2.0;
  }
  if (method == "xattention") {
    const double n = CeilDiv(l, static_cast<double>(e.xattn_stride));
    // Strided q/k of dimension head_dim * stride over n x n causal positions.
    return per_pair * static_cast<double>(e.xattn_stride) * n * (n + 1.0) / 2.0;
  }
  if (method == "quest") {
    // Per step: 2 multiplies + max + add per dimension per page of the context.
    double pages = 0.0;
    for (int64_t t = 0; t < decode_tokens; ++t) {
      pages += CeilDiv(l + static_cast<double>(t) + 1.0, static_cast<double>(e.quest_page));
    }
    return 2.0 * per_pair * pages;
  }
  if (method == "oracle_topk") {
    return per_pair * l * (l + 1.0) / 2.0;  // the exact scores of every causal pair
  }
  return absl::InvalidArgumentError(
      absl::StrCat("no estimation FLOPs formula for method '", method,
                   "': record the worker's measured indexing FLOPs instead"));
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
