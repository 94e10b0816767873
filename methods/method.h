// One sparse-attention method as the rest of the system sees it, before any kernel:
// where it runs, its parameters (defaults, bounds, help), its budget parameter, the
// closed form between a compression target and its parameters, and the FLOPs it spends
// choosing what to attend to. Each method declares one MethodInfo in its own file
// (methods/<name>.cc, listed in methods/method_list.h); methods/registry.h collects them.
// docs/methods.md, "Adding a method".
#ifndef SF_METHODS_METHOD_H_
#define SF_METHODS_METHOD_H_

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/job.h"
#include "common/phase.h"

namespace sf {

class ParamReader;  // methods/params.h

enum class ParamType { kInt, kFloat, kBool, kString };

struct MethodParam {
  const char* name;
  ParamType type;
  // Default as text ("" = no default: the value must come from the spec or from a
  // compression target). Strings list allowed values in `choices`.
  const char* default_value;
  double min;  // inclusive bounds for numbers
  double max;
  const char* choices;  // "|"-separated allowed values for kString, else ""
  const char* help;
  // Set by a compression target together with the budget parameter (vertical_slash's
  // `slashes`), so a spec that gives `compression` must not give it.
  bool set_by_compression = false;
};

// How a method's budget follows a compression target.
enum class BudgetRule {
  kNone,           // no budget: always dense
  kClosedForm,     // `map_compression` / `nominal_compression` (nominal compression)
  kMassThreshold,  // a mass threshold: the compression depends on the data
};

// Per-method settings of the analysis's estimation-FLOPs formulas (the study's
// defaults, which are not always the methods' run defaults).
struct EstimationSettings {
  int64_t vs_last_q = 64;         // vertical_slash: queries used to estimate
  int64_t block = 16;             // block_sparse: block size
  int64_t flex_last_block = 128;  // flexprefill: last block of queries
  int64_t xattn_stride = 8;       // xattention: antidiagonal stride
  int64_t quest_page = 16;        // quest: page size
  int64_t snapkv_window = 256;    // snapkv, ada_snapkv: observation window
};

// What the estimation-FLOPs formula of one sample needs.
struct EstimationInput {
  // FLOPs of one query-key dot product over the whole model: 2 x layers x Hq x head_dim.
  double pair_flops = 0;
  int64_t seq_len = 0;        // the prompt
  int64_t decode_tokens = 0;  // generated tokens
  EstimationSettings settings;
};

struct MethodInfo {
  const char* name;
  PhaseSet phases;  // where it can run
  // Where a spec entry without `phase` runs it; empty = the entry must say.
  PhaseSet default_phases;
  // The parameter that sets the budget natively (e.g. "token_capacity"); a spec gives
  // either it or `compression` (mapped to it per sequence length), not both. "" = none.
  const char* budget_param;
  std::span<const MethodParam> params;
  const char* summary;
  BudgetRule budget_rule = BudgetRule::kNone;

  // Checks across parameters that do not depend on the sequence (an odd pooling kernel),
  // on resolved parameters; a parameter set by compression may be absent (skip its
  // checks then). InvalidArgument naming the parameter. Null = none.
  absl::Status (*check)(const ParamReader& params) = nullptr;
  // kClosedForm: writes the budget parameter (and those set with it) for compression
  // `c` >= 1 at `seq_len` >= 1 tokens into *out, which holds the other parameters
  // resolved. Prefill counts causal query-key pairs; decode counts the cached tokens
  // one step reads (seq_len = the context). c = 1 gives the dense budget.
  absl::Status (*map_compression)(const ParamReader& params, double c, int64_t seq_len, Phase phase,
                                  ParamMap* out) = nullptr;
  // kClosedForm: the nominal compression of resolved parameters at `seq_len`; the
  // inverse of map_compression.
  absl::StatusOr<double> (*nominal_compression)(const ParamReader& params, int64_t seq_len,
                                                Phase phase) = nullptr;
  // The FLOPs the method spends choosing, for one sample (docs/analysis.md). Null = no
  // formula (the worker's measured figure is used instead).
  double (*estimation_flops)(const EstimationInput& input) = nullptr;
};

// Causal query-key pairs of a prefill of n tokens: n (n + 1) / 2.
inline double CausalPairs(int64_t n) { return 0.5 * static_cast<double>(n) * (n + 1); }

}  // namespace sf

#endif  // SF_METHODS_METHOD_H_
