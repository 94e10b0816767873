#include "common/gpu_memory.h"

#include <algorithm>

namespace sf::model {
namespace {

// The cache is allocated in steps of 256 rows per head.
int64_t CacheRows(int64_t tokens) { return (std::max<int64_t>(tokens, 256) + 255) / 256 * 256; }

struct LayerParts {
  int64_t weights = 0;  // one layer's weights, float32 norms and biases included
  int64_t kv = 0;       // one layer's KV cache
};

LayerParts OneLayer(const ModelShape& c, const GpuMemorySettings& s, int64_t tokens) {
  const int64_t elem = s.element_bytes;
  const int64_t H = c.hidden_size, d = c.head_dim, I = c.intermediate_size;
  const int64_t q_width = c.num_heads * d, kv_width = c.num_kv_heads * d;
  const int64_t qkv_width = q_width + 2 * kv_width;
  int64_t small = 2 * H;  // the two norms (float32)
  if (c.qkv_bias) small += qkv_width;
  if (c.o_bias) small += H;
  if (c.mlp_bias) small += 2 * I + H;
  LayerParts p;
  p.weights = elem * (H * qkv_width + q_width * H + H * 2 * I + I * H) + 4 * small;
  p.kv = elem * 2 * kv_width * CacheRows(tokens);
  return p;
}

// One chunk's activations: residual x (float32), normed h, q/k/v, attention output, the
// MLP's gate/up and activation (in chunks of at most 4096 rows), the logits of one row,
// and fixed workspaces (cuBLASLt, decode split-KV partials).
int64_t Workspace(const ModelShape& c, const GpuMemorySettings& s, int64_t tokens) {
  const int64_t elem = s.element_bytes;
  const int64_t H = c.hidden_size, d = c.head_dim, I = c.intermediate_size, V = c.vocab_size;
  const int64_t q_width = c.num_heads * d, qkv_width = q_width + 2 * c.num_kv_heads * d;
  int64_t chunk = s.prefill_chunk_tokens > 0 ? s.prefill_chunk_tokens : tokens;
  chunk = std::max<int64_t>(1, std::min(chunk, tokens));
  const int64_t mlp_rows = std::min<int64_t>(chunk, 4096);
  int64_t w =
      4 * chunk * H + elem * chunk * (H + qkv_width + q_width) + elem * mlp_rows * 3 * I + 4 * V;
  const int64_t splits = (CacheRows(tokens) + 511) / 512;
  w += 4 * c.num_heads * splits * (d + 2) + (64 << 20);
  return w;
}

}  // namespace

LayerMemoryProfile ProfileGpuMemory(const ModelShape& c, const GpuMemorySettings& s,
                                    int64_t tokens) {
  const int64_t elem = s.element_bytes;
  const LayerParts layer = OneLayer(c, s, tokens);
  LayerMemoryProfile p;
  p.layers = c.num_layers;
  p.per_layer_bytes = layer.weights + layer.kv;
  const int64_t matrix = elem * c.vocab_size * c.hidden_size;
  p.first_stage_bytes = matrix;
  // The lm_head (the embedding matrix again when tied) and the final norm.
  p.last_stage_bytes = matrix + 4 * c.hidden_size;
  p.shared_end_bytes = c.tie_word_embeddings ? matrix : 0;
  p.per_stage_bytes = Workspace(c, s, tokens);
  return p;
}

GpuMemoryEstimate EstimateGpuMemory(const ModelShape& c, const GpuMemorySettings& s, int64_t tokens,
                                    int64_t first_layer, int64_t end_layer) {
  const LayerMemoryProfile p = ProfileGpuMemory(c, s, tokens);
  const LayerParts layer = OneLayer(c, s, tokens);
  const int64_t n = end_layer - first_layer;
  GpuMemoryEstimate e;
  e.kv_cache = n * layer.kv;
  e.workspace = p.per_stage_bytes;
  e.weights = p.StageBytes(first_layer, end_layer) - e.kv_cache - e.workspace;
  return e;
}

}  // namespace sf::model
