// Attention fidelity without a trained model: a seeded generator of Q/K/V with the
// structures sparse methods rely on (sinks, local windows, vertical stripes, diagonals,
// retrieval needles), a binary dump format for Q/K/V from a real model run, and the
// per-method measurement of recall of dense attention mass, output error and measured
// compression.
#ifndef SF_KERNELS_CPU_FIDELITY_H_
#define SF_KERNELS_CPU_FIDELITY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/job.h"
#include "kernels/cpu/attention.h"

namespace sf::kernels {

// Q/K/V of one layer for a prefill of `k.len` tokens: q [Hq, L, D], k and v [Hkv, L, D].
struct LayerQkv {
  Tensor q, k, v;
};

struct GeneratorOptions {
  int64_t length = 4096;
  int64_t heads = 8;  // query heads
  int64_t kv_heads = 2;
  int64_t head_dim = 64;
  uint64_t seed = 1;
};

// Structured Q/K/V. Query head h has kind h % 4: 0 local (sink + strong local window),
// 1 vertical (stripes: a fixed set of key columns every query favours), 2 slash (query i
// matches key i - offset), 3 retrieval (the last eighth of queries look for needle
// keys); every head also has a sink, a weaker local window and noise. Deterministic in
// the options. InvalidArgument for non-positive sizes, heads % kv_heads != 0 or a head
// dim below 32.
absl::StatusOr<LayerQkv> GenerateStructuredQkv(const GeneratorOptions& options);

// The dump format (docs/methods.md): "SFQKV001", then little-endian int64 Hq, Hkv, L, D,
// then float32 q [Hq, L, D], k [Hkv, L, D], v [Hkv, L, D] (C order).
absl::Status WriteQkvDump(const std::string& path, const LayerQkv& qkv);
// NotFound if the file is missing; InvalidArgument (with the path) if it is malformed.
absl::StatusOr<LayerQkv> ReadQkvDump(const std::string& path);

// Fidelity of one method configuration against dense attention on the same rows.
struct FidelityResult {
  std::string method;
  Phase phase = Phase::kPrefill;
  ParamMap params;                  // as run, budget included
  double target_compression = 1;    // what was asked (1 = native parameters)
  double measured_compression = 1;  // causal pairs / pairs computed
  double estimation_flops = 0;
  double seconds = 0;
  std::vector<double> head_recall;  // mean over rows of the dense mass on selected keys
  std::vector<double> head_error;   // ||O - O_dense||_F / ||O_dense||_F per query head
  double mean_recall() const;
  double min_recall() const;
  double mean_error() const;
  double max_error() const;
};

// Dense attention over the rows a phase measures, computed once and shared.
struct DenseReference {
  Phase phase;
  int64_t prompt = 0;  // decode: rows >= prompt are decode steps
  AttentionResult result;
};

// The rows of each phase: prefill = all rows; decode = the last `decode_steps` rows.
// REQUIRES for decode: 1 <= decode_steps < qkv.k.len.
DenseReference ComputeDenseReference(const LayerQkv& qkv, Phase phase, int64_t decode_steps);

// Runs `method` with `params` (a full ParamMap: defaults are filled) in `reference`'s
// phase and compares it with dense.
absl::StatusOr<FidelityResult> MeasureFidelity(absl::string_view method, const ParamMap& params,
                                               const LayerQkv& qkv,
                                               const DenseReference& reference);

// The parameters that bring `method` to `compression` at this input: the closed-form
// mapping for structural methods, and for threshold methods (flexprefill gamma,
// xattention threshold) a bisection on the measured compression of the selection.
absl::StatusOr<ParamMap> CalibrateBudget(absl::string_view method, const ParamMap& params,
                                         double compression, const LayerQkv& qkv,
                                         const DenseReference& reference);

// One row of a fidelity table: a method at a compression target (or, with target 1 and
// the budget in `params`, at native parameters; dense ignores the target).
struct FidelityRequest {
  std::string method;
  ParamMap params;  // overrides of the catalog's defaults
  double target_compression = 1;
};

struct FidelityTableOptions {
  Phase phase = Phase::kPrefill;
  int64_t decode_steps = 64;  // decode: the last rows are steps, the rest the prompt
  int threads = 0;            // 0 = every core
};

// Every request in one phase, fast: budgets are calibrated exactly as CalibrateBudget
// does (same parameters), with the statistics a method's selection needs (last
// queries' line mass, XAttention's block mass, SnapKV's importance) computed once per
// table; then one pass over (head, tile of 16 rows) computes the scores and dense
// attention once in float32 (AVX2/FMA where present) and each request's sparse
// attention over its selected pairs only; oracle_topk picks its top k from the same
// float32 scores (ties at float32 may choose other keys than the float64 reference).
// Recall and error agree with MeasureFidelity to 1e-4 (tested), measured compression
// is exact. `seconds` = CPU seconds spent on the request (calibration, selection, its
// share of the pass); dense's = computing the scores and dense outputs. Element i is
// requests[i]'s result, or its error (unknown method, a method of the other phase,
// invalid parameters).
std::vector<absl::StatusOr<FidelityResult>> MeasureFidelityTable(
    const LayerQkv& qkv, const std::vector<FidelityRequest>& requests,
    const FidelityTableOptions& options);

}  // namespace sf::kernels

#endif  // SF_KERNELS_CPU_FIDELITY_H_
