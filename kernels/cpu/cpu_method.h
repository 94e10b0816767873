// The CPU selection of one attention method: what each method's file under
// kernels/cpu/methods/ implements, and the table of them keyed by the method's registry
// name (kernels/cpu/methods/method_list.h). PrefillSelect, DecodeSelect, CompressKv,
// the fidelity measurement and the worker's hooks all go through it; none names a
// method. docs/methods.md, "Adding a method".
#ifndef SF_KERNELS_CPU_CPU_METHOD_H_
#define SF_KERNELS_CPU_CPU_METHOD_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/job.h"
#include "common/phase.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/method_params.h"
#include "methods/method.h"
#include "methods/params.h"

namespace sf::kernels {

class SharedStats;  // kernels/cpu/shared_stats.h

// How the model engine runs a method's decode phase.
enum class DecodeRun {
  // Evict prompt rows after prefill (CompressKv), then attend exactly to what the cache
  // holds (generated tokens are always kept).
  kEvictAfterPrefill,
  // Choose keys per step over the whole cache (SelectDecode), nothing evicted.
  kPerStep,
};

// One method's CPU selection with its parameters bound. Immutable; thread-safe.
class CpuMethod {
 public:
  explicit CpuMethod(const MethodInfo& info) : info_(info) {}
  virtual ~CpuMethod() = default;

  const MethodInfo& info() const { return info_; }

  // The keys each query row of `in` attends to (rows at positions in.q_offset + i).
  // REQUIRES: ValidateInput(in) is ok. Default: InvalidArgument (a decode method).
  // Parameter errors that depend on the length: InvalidArgument naming the parameter.
  virtual absl::StatusOr<SelectionResult> SelectPrefill(const AttentionInput& in) const;

  // The keys of decode steps after a prompt of P = steps.q_offset >= 1 tokens;
  // `observation_q` are the prompt's last queries. REQUIRES: ValidateInput(steps) ok.
  // Default: the prefill rule per step for methods that run in both phases, else
  // InvalidArgument (a prefill method).
  virtual absl::StatusOr<SelectionResult> SelectDecode(const AttentionInput& steps,
                                                       const TensorView& observation_q) const;

  // KV eviction after prefill: the prompt positions kept per KV head. Default:
  // InvalidArgument (the method does not compress the cache).
  virtual absl::StatusOr<KeptTokens> CompressKv(const TensorView& observation_q,
                                                const TensorView& keys) const;

  // How the engine runs the decode phase (methods that run in decode).
  virtual DecodeRun decode_run() const { return DecodeRun::kEvictAfterPrefill; }

  // The prompt's last queries CompressKv observes, of `available`.
  virtual int64_t ObservationRows(int64_t available) const { return available; }

  // The fidelity table's fast path: the selection from statistics shared across the
  // table (nullopt: the method has none; the table calls SelectPrefill/SelectDecode).
  virtual std::optional<absl::StatusOr<SelectionResult>> SelectShared(
      const AttentionInput& in, const TensorView& observation_q, Phase phase,
      SharedStats& stats) const {
    return std::nullopt;
  }

  // The fidelity table's exact top-k path: keys per row chosen from the table's own
  // float32 scores (oracle_topk); 0 = use the selection.
  virtual int64_t exact_top_k() const { return 0; }

  // Whether every causal key is attended (dense): the table reuses dense attention.
  virtual bool attends_every_key() const { return false; }

 private:
  const MethodInfo& info_;
};

// What calibrating a budget on data needs (fidelity.h, CalibrateBudget).
struct Calibration {
  const MethodInfo& method;
  const ParamMap& params;  // overrides of the defaults
  double compression;      // >= 1
  int64_t length;          // keys of the layer
  Phase phase;
  int64_t prompt;               // decode: the rows before the steps
  const AttentionInput& input;  // the rows measured
  // The method's selection for typed parameters (shared statistics where it has them).
  std::function<absl::StatusOr<SelectionResult>(const MethodParams&)> select;
};

// Calibration helpers the method files share (kernels/cpu/fidelity.cc).
// The closed form (ParamsForCompression) at `seq_len` in the calibration's phase.
absl::StatusOr<ParamMap> CalibrateClosedForm(const Calibration& c, int64_t seq_len);
// Measured compression of a selection over the calibration's rows.
double MeasuredCompression(const Calibration& c, const Selection& selection);
// Bisection of a mass threshold `param` in [0, 1] on the measured compression (12
// steps; prefill only).
absl::StatusOr<ParamMap> CalibrateMassThreshold(const Calibration& c, const char* param);

// One method's entry in the CPU table.
struct CpuMethodEntry {
  const char* name;  // the registry's name (methods/registry.h)
  // Binds parameters (checked against the registry) to the selection.
  absl::StatusOr<std::shared_ptr<const CpuMethod>> (*bind)(const ParamReader& params);
  // The budget that reaches a measured compression on data. Null: the closed form at
  // the layer's length (CalibrateClosedForm(c, c.length)).
  absl::StatusOr<ParamMap> (*calibrate)(const Calibration& c) = nullptr;
  // The line mass rows (last queries) its prefill selection reads from SharedStats, so
  // a table computes every such statistic in one pass. Null or nullopt: none.
  std::optional<int64_t> (*line_mass_rows)(const ParamReader& params) = nullptr;
};

// The CPU entry of `method`, or nullptr.
const CpuMethodEntry* FindCpuMethod(absl::string_view method);

}  // namespace sf::kernels

#endif  // SF_KERNELS_CPU_CPU_METHOD_H_
