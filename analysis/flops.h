// The FLOPs model: 2 FLOPs per linear parameter per token,
// 4 * layers * Hq * head_dim per query-key pair of attention, plus each method's
// estimation (indexing) cost; prefill and decode are reported apart.
#ifndef SF_ANALYSIS_FLOPS_H_
#define SF_ANALYSIS_FLOPS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sf::analysis {

// The architecture numbers the FLOPs model needs (a Hugging Face config.json's
// hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads,
// intermediate_size, vocab_size; head_dim = hidden / heads unless given).
struct ModelShape {
  int64_t hidden = 0;
  int64_t layers = 0;
  int64_t heads = 0;     // Hq
  int64_t kv_heads = 0;  // Hkv (GQA)
  int64_t head_dim = 0;  // 0 = hidden / heads
  int64_t intermediate = 0;
  int64_t vocab = 0;
  bool qkv_bias = true;  // Qwen2/2.5 have q/k/v biases, Llama does not
  bool tied_embeddings = false;
  // Total parameter count when known (e.g. from the checkpoint); 0 = compute it.
  double params_override = 0.0;

  int64_t HeadDim() const { return head_dim > 0 ? head_dim : (heads > 0 ? hidden / heads : 0); }
};

// Qwen2.5 Instruct configurations (from their config.json files).
ModelShape Qwen25_7B();
ModelShape Qwen25_14B();
ModelShape Qwen25_32B();
ModelShape Qwen25_72B();

// Parameters of the matrix multiplies run per token: q/k/v/o projections (with
// biases), the gated MLP (3 matrices) and the LM head. Embedding lookups and norms
// are not multiplies and are excluded.
double LinearParams(const ModelShape& s);
// Every parameter: LinearParams + input embedding (unless tied) + RMSNorm weights.
// This is the N of the scaling law; params_override wins when set.
double TotalParams(const ModelShape& s);

// Per-method estimation settings (the study's defaults).
struct EstimationSettings {
  int64_t vs_last_q = 64;         // vertical_slash: queries used to estimate
  int64_t block = 16;             // block_sparse: block size
  int64_t flex_last_block = 128;  // flexprefill: last block of queries
  int64_t xattn_stride = 8;       // xattention: antidiagonal stride
  int64_t quest_page = 16;        // quest: page size
  int64_t snapkv_window = 256;    // snapkv, ada_snapkv: observation window
};

// Estimation (indexing) FLOPs of `method` for one sample: prefill methods over a
// prompt of `seq_len`, decode methods over `decode_tokens` steps. The formulas are
// in docs/analysis.md. Returns InvalidArgument for a method it has no formula for
// (pass the worker's measured figure instead).
absl::StatusOr<double> EstimationFlops(absl::string_view method, const ModelShape& s,
                                       int64_t seq_len, int64_t decode_tokens,
                                       const EstimationSettings& settings = {});

// FLOPs of one sample, split by phase.
struct FlopsBreakdown {
  double prefill_linear = 0.0;
  double prefill_attention = 0.0;
  double decode_linear = 0.0;
  double decode_attention = 0.0;
  double indexing = 0.0;
  double Prefill() const { return prefill_linear + prefill_attention; }
  double Decode() const { return decode_linear + decode_attention; }
  double Total() const { return Prefill() + Decode() + indexing; }
};

// FLOPs of a prompt of `seq_len` tokens then `decode_tokens` greedy steps.
// Prefill attention computes L(L+1)/2 causal pairs divided by `prefill_compression`;
// decode step t (0-based) attends to the L + t + 1 cached tokens divided by
// `decode_compression`. `indexing` is added as given.
// REQUIRES: compressions >= 1, seq_len >= 1, decode_tokens >= 0.
FlopsBreakdown ComputeFlops(const ModelShape& s, int64_t seq_len, int64_t decode_tokens,
                            double prefill_compression, double decode_compression, double indexing);

}  // namespace sf::analysis

#endif  // SF_ANALYSIS_FLOPS_H_
