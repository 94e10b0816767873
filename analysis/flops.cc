#include "analysis/flops.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "methods/registry.h"

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
  EstimationInput in;
  in.pair_flops = 2.0 * static_cast<double>(s.layers * s.heads * s.HeadDim());
  in.seq_len = seq_len;
  in.decode_tokens = decode_tokens;
  in.settings = e;
  return ::sf::EstimationFlops(method, in);
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
