// The engine's attention interface: every layer's attention goes through an
// AttentionHook, so the sparse methods (kernels/cpu) plug in per phase. DenseAttention
// is exact causal attention with GQA (query heads index their KV head; nothing is
// copied). See docs/engine.md for the contract.
#ifndef SF_WORKER_MODEL_ATTENTION_H_
#define SF_WORKER_MODEL_ATTENTION_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "common/phase.h"
#include "worker/model/kv_cache.h"
#include "worker/model/thread_pool.h"

namespace sf::model {

// The phase of an attention call: the one phase enum (common/phase.h).
using AttentionPhase = ::sf::Phase;

// One layer's attention for a run of new tokens, whose keys and values are already
// appended to the cache. Query j (0-based among the new tokens) on KV head h may see
// cache rows [0, cache->length(layer, h) - num_queries + j]: the rows held before
// this call plus the new ones up to itself (causal).
struct AttentionCall {
  int layer = 0;
  AttentionPhase phase = AttentionPhase::kPrefill;
  int num_queries = 0;   // new tokens (1 in decode)
  int num_q_heads = 0;   // Hq; query head q uses KV head q / (Hq / Hkv)
  int num_kv_heads = 0;  // Hkv
  int head_dim = 0;
  // Queries after RoPE, [num_queries][num_q_heads][head_dim], rows q_row_stride apart.
  const float* q = nullptr;
  int64_t q_row_stride = 0;
  // Multiplies q.k before softmax (1/sqrt(head_dim)).
  float softmax_scale = 1.0f;
  // Absolute position of query 0 (tokens seen before this call).
  int64_t first_position = 0;
  KvCache* cache = nullptr;
  // Output, [num_queries][num_q_heads][head_dim], rows out_row_stride apart.
  float* out = nullptr;
  int64_t out_row_stride = 0;
  ThreadPool* pool = nullptr;  // may be used for parallel work; never null
};

// What a method reports about one call, summed by the engine over layers.
struct AttentionStats {
  double pairs_computed = 0;  // query-key pairs whose scores were computed
  double pairs_dense = 0;     // pairs dense causal attention would compute
};

class AttentionHook {
 public:
  virtual ~AttentionHook() = default;
  virtual std::string Name() const = 0;
  // Writes call.out. May add to `stats` (never null).
  virtual absl::Status Attend(const AttentionCall& call, AttentionStats* stats) = 0;
  // Called for each layer right after its prefill Attend, with the same call (the
  // prompt's queries are still valid), before later layers run: the place for KV
  // compression (e.g. SnapKV evicting rows with KvCache::Compact). Default: keep all.
  virtual absl::Status AfterPrefill(const AttentionCall& call) { return absl::OkStatus(); }
  // True when Attend is exactly DenseAttention (same output and stats) and AfterPrefill
  // does nothing: a backend may then run its own dense kernel instead of calling the hook
  // (the CUDA engine does, so dense runs copy nothing to the host).
  virtual bool IsExactDense() const { return false; }
};

// Exact causal softmax attention in float32; prefill is tiled so each tile is two
// GEMMs, parallel over (query head, query block).
class DenseAttention : public AttentionHook {
 public:
  std::string Name() const override { return "dense"; }
  absl::Status Attend(const AttentionCall& call, AttentionStats* stats) override;
  bool IsExactDense() const override { return true; }
};

// Dense pairs of a call: sum over query heads and queries of the rows each may see.
double DensePairs(const AttentionCall& call);

}  // namespace sf::model

#endif  // SF_WORKER_MODEL_ATTENTION_H_
