// Engine options that every backend shares: dtype names and the CUDA memory estimate.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "worker/model/engine.h"

namespace sf::model {

absl::StatusOr<ComputeDType> ParseComputeDType(absl::string_view name) {
  if (name == "float32" || name == "f32") return ComputeDType::kFloat32;
  if (name == "bfloat16" || name == "bf16") return ComputeDType::kBfloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("dtype '", name, "' is not known; use float32 or bfloat16"));
}

const char* ComputeDTypeName(ComputeDType dtype) {
  return dtype == ComputeDType::kBfloat16 ? "bfloat16" : "float32";
}

GpuMemoryEstimate EstimateGpuMemory(const ModelConfig& c, const EngineOptions& options,
                                    int64_t tokens) {
  const int64_t elem = options.dtype == ComputeDType::kBfloat16 ? 2 : 4;
  const int64_t H = c.hidden_size, d = c.head_dim, I = c.intermediate_size, V = c.vocab_size;
  const int64_t q_width = c.num_heads * d, kv_width = c.num_kv_heads * d;
  const int64_t qkv_width = q_width + 2 * kv_width;
  GpuMemoryEstimate e;
  const int64_t per_layer = H * qkv_width + q_width * H + H * 2 * I + I * H;
  const int64_t head = c.tie_word_embeddings ? 0 : V * H;
  e.weights = elem * (V * H + head + c.num_layers * per_layer);
  int64_t small = 2 * H * c.num_layers + H;  // norms (float32)
  if (c.qkv_bias) small += qkv_width * c.num_layers;
  if (c.o_bias) small += H * c.num_layers;
  if (c.mlp_bias) small += (2 * I + H) * c.num_layers;
  e.weights += 4 * small;
  // The cache is allocated in steps of 256 rows per head.
  const int64_t rows = (std::max<int64_t>(tokens, 256) + 255) / 256 * 256;
  e.kv_cache = elem * 2 * c.num_layers * kv_width * rows;
  // One chunk's activations: residual x (float32), normed h, q/k/v, attention output,
  // the MLP's gate/up and activation (in chunks of at most 4096 rows), the logits of one
  // row, and fixed workspaces (cuBLASLt, decode split-KV partials).
  int64_t chunk = options.prefill_chunk_tokens;
  if (chunk <= 0) chunk = options.dtype == ComputeDType::kBfloat16 ? 8192 : tokens;
  chunk = std::max<int64_t>(1, std::min(chunk, tokens));
  const int64_t mlp_rows = std::min<int64_t>(chunk, 4096);
  e.workspace =
      4 * chunk * H + elem * chunk * (H + qkv_width + q_width) + elem * mlp_rows * 3 * I + 4 * V;
  const int64_t splits = (rows + 511) / 512;
  e.workspace += 4 * c.num_heads * splits * (d + 2) + (64 << 20);
  return e;
}

}  // namespace sf::model
