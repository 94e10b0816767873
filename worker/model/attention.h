// The engine's attention interface: every layer's attention goes through an
// AttentionHook, so the sparse methods (kernels/cpu, kernels/cuda) plug in per phase. A
// call carries the host view (queries, KvCache, ThreadPool) or, on a device backend for a
// hook with a CUDA implementation, the device view (DeviceAttentionView). DenseAttention
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

namespace sf::cuda {
struct AttentionParams;  // kernels/cuda/attention/params.h
}  // namespace sf::cuda

namespace sf::model {

// The phase of an attention call: the one phase enum (common/phase.h).
using AttentionPhase = ::sf::Phase;

// Where a phase's attention ran, as recorded with a job's results.
enum class AttentionBackend {
  kNone,        // the phase did not run
  kCpu,         // the CPU engine
  kCuda,        // on the device, inside the CUDA engine
  kHostMirror,  // a hook without a CUDA implementation, on the host over a copy of the
                // device cache (the CUDA engine copies Q and the cache to it)
};
// "none", "cpu", "cuda", "host-mirror".
const char* AttentionBackendName(AttentionBackend backend);

// One layer's attention state on the device, for hooks with a CUDA implementation. All
// pointers are device pointers of the engine's element type (params->dtype) unless said.
struct DeviceAttentionView {
  // Ready for a kernel of kernels/cuda/attention: the queries after RoPE, the layer's
  // cache (new rows already appended), per-head lengths (int32), the output the hook must
  // write, the softmax scale, a workspace, the stream every kernel must run on, and the
  // element type. Shapes as AttentionCall's. Valid for the duration of the call. In
  // decode the workspace fits either dense decode kernel (kernels/cuda/attention/dense.h
  // and decode.h's DenseDecode) over params->max_kv_length; a hook whose kernels need more
  // keeps its own.
  const cuda::AttentionParams* params = nullptr;
  // The same cache, writable, for methods that evict rows (compacting a head's rows to
  // the front and lowering its length): [num_kv_heads][capacity][head_dim] in
  // params->dtype, lengths int32 [num_kv_heads]. After changing lengths the hook also
  // updates host_kv_lengths, which the engine uses to size later launches.
  void* keys = nullptr;
  void* values = nullptr;
  int32_t* kv_lengths = nullptr;
  int64_t capacity = 0;
  // The per-head lengths as the host knows them ([num_kv_heads], after this call's
  // append): for counting pairs and sizing grids without reading the device.
  int64_t* host_kv_lengths = nullptr;
  // Quest page metadata, kept only for a decode hook whose WantsPageBounds() is true
  // (else null): float32 [num_kv_heads][pages_per_head][head_dim], the element-wise min
  // and max of the keys of page p = rows [p * page_size, (p + 1) * page_size) of a head.
  // The engine updates the pages it appends to; a hook that compacts rows recomputes them.
  const float* page_key_min = nullptr;
  const float* page_key_max = nullptr;
  int page_size = 0;
  int64_t pages_per_head = 0;
};

// One layer's attention for a run of new tokens, whose keys and values are already
// appended to the cache. Query j (0-based among the new tokens) on KV head h may see
// cache rows [0, length(h) - num_queries + j]: the rows held before this call plus the
// new ones up to itself (causal). A host call (Attend, AfterPrefill) sets q, cache, out
// and pool and leaves `device` null; a device call (AttendOnDevice, AfterPrefillOnDevice)
// sets `device` and leaves q, cache and out null.
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
  ThreadPool* pool = nullptr;  // may be used for parallel work; never null in host calls
  const DeviceAttentionView* device = nullptr;
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

  // Device entry points. A device backend asks SupportsDevice(call) before each device
  // call it would make (the attention of a layer, and after prefill), with call.device
  // set: the hook answers from what the call says (the element type in
  // call.device->params->dtype, head_dim, phase, lengths) and what it knows of the device.
  // When true, the backend calls AttendOnDevice or AfterPrefillOnDevice (same contracts
  // as Attend and AfterPrefill, every kernel on call.device->params->stream) and copies
  // nothing to the host. When false, the hook runs on the host over a mirror of the
  // device cache, and the job's result says so (AttentionBackend::kHostMirror). A hook
  // whose AfterPrefillOnDevice changes the device cache (eviction) must keep answering
  // true for that engine's later calls: the host mirror no longer follows the cache.
  virtual bool SupportsDevice(const AttentionCall& call) const { return false; }
  virtual absl::Status AttendOnDevice(const AttentionCall& call, AttentionStats* stats) {
    return absl::UnimplementedError(Name() + " has no device implementation");
  }
  virtual absl::Status AfterPrefillOnDevice(const AttentionCall& call) { return absl::OkStatus(); }
  // True when the hook reads Quest page bounds (DeviceAttentionView::page_key_min/max):
  // the engine then keeps them up to date on the device.
  virtual bool WantsPageBounds() const { return false; }
};

// Exact causal softmax attention in float32; prefill is tiled so each tile is two
// GEMMs, parallel over (query head, query block).
class DenseAttention : public AttentionHook {
 public:
  std::string Name() const override { return "dense"; }
  absl::Status Attend(const AttentionCall& call, AttentionStats* stats) override;
  bool IsExactDense() const override { return true; }
};

// Dense pairs of a call: sum over query heads and queries of the rows each may see (from
// the host cache, or the device view's host_kv_lengths).
double DensePairs(const AttentionCall& call);

}  // namespace sf::model

#endif  // SF_WORKER_MODEL_ATTENTION_H_
