// The device side of the method hooks (worker/method_hooks.h): each method's selection,
// attention, eviction and per-step choice through the kernels of kernels/cuda/attention,
// for a CUDA engine running bf16 with head_dim 64, 128 or 256 on an sm_90 device. The
// hooks made in method_hooks.cc hold one of these and ask it per call whether it can
// run there (AttentionHook::SupportsDevice); anything else runs on the host mirror.
// A build without CUDA has no device methods (the factories return null).
#ifndef SF_WORKER_METHOD_HOOKS_CUDA_H_
#define SF_WORKER_METHOD_HOOKS_CUDA_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/job.h"
#include "kernels/cpu/attention.h"
#include "worker/model/attention.h"

namespace sf::worker {

// One method's device implementation. Not thread-safe (one engine drives it); it owns
// its device buffers, allocated on first use and grown, never per decode step once they
// are large enough.
class DeviceMethod {
 public:
  virtual ~DeviceMethod() = default;
  // Whether `call` (call.device set) can run on the device: the engine's element type,
  // head_dim and device, and the method's own conditions (e.g. block-aligned queries).
  // The answer depends only on the engine and the call's shape, so a method that evicts
  // on the device keeps running there.
  virtual bool Supports(const model::AttentionCall& call) const = 0;
  // AttentionHook::AttendOnDevice; adds the FLOPs spent choosing to *estimation_flops.
  virtual absl::Status Attend(const model::AttentionCall& call, model::AttentionStats* stats,
                              double* estimation_flops) = 0;
  // AttentionHook::AfterPrefillOnDevice (eviction); default: nothing.
  virtual absl::Status AfterPrefill(const model::AttentionCall& call, double* estimation_flops) {
    return absl::OkStatus();
  }
  // GPU seconds of the method's choosing since construction (scoring and selection; for
  // quest also its page summaries; for the evicting methods the choice of kept rows, not
  // the compaction), timed with CUDA events recorded on the engine's stream around those
  // kernels. Events of the last call that have not completed are waited for here, so ask
  // once the work of interest is done; no call adds a host synchronisation for timing.
  virtual double EstimationSeconds() { return 0; }
  // The lists the last prefill call attended, copied to the host in the CPU reference's
  // form (kernels::DescribeSelection: columns and offsets of line patterns per query
  // head, key blocks per query block), for comparisons with the reference in tests and
  // when debugging. Unimplemented for methods without such lists (decode methods,
  // tri_shape, flexprefill's original variant).
  virtual absl::StatusOr<kernels::SelectionStructure> LastSelection() {
    return absl::UnimplementedError("this method keeps no prefill lists");
  }
};

// The device implementation of `method`'s prefill (its parameters resolved and already
// checked by kernels::ParseMethodParams), or null when it has none: dense (the engine's
// own kernel runs it) or a build without CUDA. InvalidArgument for parameters that do
// not parse (never for ones ParseMethodParams accepted).
absl::StatusOr<std::unique_ptr<DeviceMethod>> MakeDevicePrefillMethod(const MethodChoice& method);

// The same for the decode phase: eviction after prefill (snapkv, ada_snapkv, streaming)
// and per-step selection (quest, oracle_topk).
absl::StatusOr<std::unique_ptr<DeviceMethod>> MakeDeviceDecodeMethod(const MethodChoice& method);

}  // namespace sf::worker

#endif  // SF_WORKER_METHOD_HOOKS_CUDA_H_
