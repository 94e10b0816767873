#include "analysis/flops.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace sf::analysis {

namespace {
ModelShape Qwen(int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads,
                int64_t intermediate) {
  ModelShape s;
  s.hidden = hidden;
  s.layers = layers;
  s.heads = heads;
  s.kv_heads = kv_heads;
  s.head_dim = 128;
  s.intermediate = intermediate;
  s.vocab = 152064;
  s.qkv_bias = true;
  s.tied_embeddings = false;
  return s;
}

double CeilDiv(double a, double b) { return std::ceil(a / b); }
}  // namespace

ModelShape Qwen25_7B() { return Qwen(3584, 28, 28, 4, 18944); }
ModelShape Qwen25_14B() { return Qwen(5120, 48, 40, 8, 13824); }
ModelShape Qwen25_32B() { return Qwen(5120, 64, 40, 8, 27648); }
ModelShape Qwen25_72B() { return Qwen(8192, 80, 64, 8, 29568); }

double LinearParams(const ModelShape& s) {
  const double h = static_cast<double>(s.hidden);
  const double q = static_cast<double>(s.heads * s.HeadDim());
  const double kv = static_cast<double>(s.kv_heads * s.HeadDim());
  double attn = h * q + 2.0 * h * kv + q * h;
  if (s.qkv_bias) attn += q + 2.0 * kv;
  const double mlp = 3.0 * h * static_cast<double>(s.intermediate);
  return static_cast<double>(s.layers) * (attn + mlp) + h * static_cast<double>(s.vocab);
}

double TotalParams(const ModelShape& s) {
  if (s.params_override > 0) return s.params_override;
  const double h = static_cast<double>(s.hidden);
  double n = LinearParams(s);
  if (!s.tied_embeddings) n += h * static_cast<double>(s.vocab);
  n += (2.0 * static_cast<double>(s.layers) + 1.0) * h;  // two norms per layer + final
  return n;
}

absl::StatusOr<double> EstimationFlops(absl::string_view method, const ModelShape& s,
                                       int64_t seq_len, int64_t decode_tokens,
                                       const EstimationSettings& e) {
  const double per_pair = 2.0 * static_cast<double>(s.layers * s.heads * s.HeadDim());
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

FlopsBreakdown ComputeFlops(const ModelShape& s, int64_t seq_len, int64_t decode_tokens,
                            double prefill_compression, double decode_compression,
                            double indexing) {
  const double per_pair = 4.0 * static_cast<double>(s.layers * s.heads * s.HeadDim());
  const double lin = 2.0 * LinearParams(s);
  const double l = static_cast<double>(seq_len);
  const double t = static_cast<double>(decode_tokens);
  FlopsBreakdown f;
  f.prefill_linear = lin * l;
  f.prefill_attention = per_pair * (l * (l + 1.0) / 2.0) / prefill_compression;
  f.decode_linear = lin * t;
  // sum_{t=0}^{T-1} (L + t + 1) = T L + T (T + 1) / 2
  f.decode_attention = per_pair * (t * l + t * (t + 1.0) / 2.0) / decode_compression;
  f.indexing = indexing;
  return f;
}

}  // namespace sf::analysis
