// AttentionHook adapters that run the kernels/cpu reference of a sparse-attention
// method inside the model engine: one hook for the prefill phase, one for decode (KV
// eviction after prefill, then exact attention over what was kept). See docs/evaluation.md.
#ifndef SF_WORKER_METHOD_HOOKS_H_
#define SF_WORKER_METHOD_HOOKS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job.h"
#include "worker/model/attention.h"

namespace sf::worker {

// A method's hook, which also counts what choosing its selection cost.
class MethodHook : public model::AttentionHook {
 public:
  // FLOPs spent choosing what to attend to / what to keep, since construction.
  double estimation_flops() const { return estimation_flops_; }
  // Seconds spent choosing, since construction, for hooks that time their selection apart
  // from the attention (device hooks, with CUDA events); 0 when not timed.
  double estimation_seconds() const { return estimation_seconds_; }

 protected:
  double estimation_flops_ = 0;
  double estimation_seconds_ = 0;
};

// Methods each phase can run through the engine: the registry's methods of that phase
// that have a CPU selection (kernels/cpu/cpu_method.h), in the registry's order.
const std::vector<std::string>& WiredPrefillMethods();
const std::vector<std::string>& WiredDecodeMethods();

// A prefill hook for `method` with registry parameters `params` (resolved). The
// baseline (the method without a budget, dense) uses the engine's tiled dense attention; the others
// copy the layer's Q/K/V into the kernels' layout and call kernels::PrefillAttention, reporting its
// measured pairs. REQUIRES a single prefill call per sequence from position 0 (what GenerateGreedy
// does). InvalidArgument for an unknown/decode-only method or bad parameters; FailedPrecondition
// for a method not wired for prefill.
absl::StatusOr<std::unique_ptr<MethodHook>> MakePrefillHook(const MethodChoice& method);

// A decode hook. For methods whose CPU selection evicts (kernels::DecodeRun::
// kEvictAfterPrefill: streaming and the SnapKV family) its AfterPrefill evicts prompt
// rows per KV head (kernels::CompressKv + KvCache::Compact); every decode step then
// attends exactly to what the cache holds (generated tokens are always kept). Density
// counts the pairs attended against the pairs dense decoding would compute. Per-step
// methods (DecodeRun::kPerStep: quest, oracle_topk) run kernels::DecodeAttention per step
// over the whole (uncompressed) cache.
// FailedPrecondition names methods not wired for decode (the prefill-only ones).
absl::StatusOr<std::unique_ptr<MethodHook>> MakeDecodeHook(const MethodChoice& method);

}  // namespace sf::worker

#endif  // SF_WORKER_METHOD_HOOKS_H_
