// AttentionHook adapters that run a sparse-attention method inside the model engine: one
// hook for the prefill phase, one for decode (KV eviction after prefill, then exact
// attention over what was kept, or a choice per step). On the host each runs the
// kernels/cpu reference; on a CUDA engine that can run the method's kernels (bf16,
// head_dim 64/128/256, sm_90) it runs them there (worker/method_hooks_cuda.h). See
// docs/evaluation.md and docs/engine.md.
#ifndef SF_WORKER_METHOD_HOOKS_H_
#define SF_WORKER_METHOD_HOOKS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job.h"
#include "kernels/cpu/attention.h"
#include "worker/model/attention.h"

namespace sf::worker {

class DeviceMethod;  // worker/method_hooks_cuda.h

// A method's hook, which also counts what choosing its selection cost.
class MethodHook : public model::AttentionHook {
 public:
  ~MethodHook() override;
  // FLOPs spent choosing what to attend to / what to keep, since construction (on the
  // host and on the device alike).
  double estimation_flops() const { return estimation_flops_; }
  // Seconds spent choosing, since construction, for hooks that time their selection apart
  // from the attention: the GPU time of a device hook's selection kernels (CUDA events,
  // worker/method_hooks_cuda.h); 0 for the host forms, which do not time it. Waits for
  // the device's last pending selection, so read it once the phase is done.
  double estimation_seconds() const;
  // The device form's lists of the last prefill call, on the host (DeviceMethod::
  // LastSelection); Unimplemented when there is no device form or it keeps no lists.
  absl::StatusOr<kernels::SelectionStructure> LastDeviceSelection() const;

  // The device entry points, answered by the method's device implementation when it has
  // one (else the hook runs on the host mirror).
  bool SupportsDevice(const model::AttentionCall& call) const override;
  absl::Status AttendOnDevice(const model::AttentionCall& call,
                              model::AttentionStats* stats) override;
  absl::Status AfterPrefillOnDevice(const model::AttentionCall& call) override;

 protected:
  // `device`: the method's device implementation, or null.
  explicit MethodHook(std::unique_ptr<DeviceMethod> device);

  double estimation_flops_ = 0;
  double estimation_seconds_ = 0;

 private:
  std::unique_ptr<DeviceMethod> device_;
};

// Methods each phase can run through the engine: the registry's methods of that phase
// that have a CPU selection (kernels/cpu/cpu_method.h), in the registry's order.
const std::vector<std::string>& WiredPrefillMethods();
const std::vector<std::string>& WiredDecodeMethods();

// A prefill hook for `method` with registry parameters `params` (resolved). The
// baseline (the method without a budget, dense) uses the engine's tiled dense attention; the others
// copy the layer's Q/K/V into the kernels' layout and call kernels::PrefillAttention, reporting its
// measured pairs, or on the device run the method's GPU selection and sparse prefill kernel
// (every sparse prefill method of the registry but oracle_topk, whose exact top-k per query
// row has no GPU kernel). REQUIRES a single prefill call per sequence from position 0 (what
// GenerateGreedy does). InvalidArgument for an unknown/decode-only method or bad parameters;
// FailedPrecondition for a method not wired for prefill.
absl::StatusOr<std::unique_ptr<MethodHook>> MakePrefillHook(const MethodChoice& method);

// A decode hook. For methods whose CPU selection evicts (kernels::DecodeRun::
// kEvictAfterPrefill: streaming and the SnapKV family) its AfterPrefill evicts prompt
// rows per KV head (kernels::CompressKv + KvCache::Compact); every decode step then
// attends exactly to what the cache holds (generated tokens are always kept). Density
// counts the pairs attended against the pairs dense decoding would compute. Per-step
// methods (DecodeRun::kPerStep: quest, oracle_topk) run kernels::DecodeAttention per step
// over the whole (uncompressed) cache. Every decode method with a budget has a device form.
// FailedPrecondition names methods not wired for decode (the prefill-only ones).
absl::StatusOr<std::unique_ptr<MethodHook>> MakeDecodeHook(const MethodChoice& method);

}  // namespace sf::worker

#endif  // SF_WORKER_METHOD_HOOKS_H_
