// Typed parameters of each attention method, parsed from the catalog's ParamMap
// (common/method_catalog.h), and the mapping between a compression target and a
// method's native budget parameter at a sequence length.
#ifndef SF_KERNELS_CPU_METHOD_PARAMS_H_
#define SF_KERNELS_CPU_METHOD_PARAMS_H_

#include <cstdint>
#include <string>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/job.h"

namespace sf::kernels {

struct DenseParams {};

struct BlockSparseParams {
  int64_t block = 16;        // query and key block size
  int64_t block_budget = 0;  // key blocks per query block, forced ones included
};

struct VerticalSlashParams {
  int64_t last_q = 256;
  int64_t sink = 4;    // first columns always kept (counted in `verticals`)
  int64_t local = 64;  // diagonals 0..local-1 always kept (counted in `slashes`)
  int64_t verticals = 0;
  int64_t slashes = 0;  // = verticals when the map does not give it
};

struct FlexPrefillParams {
  double gamma = 0.65;  // the study's config (alpha)
  double tau = 0.1;
  int64_t min_budget = 512;
  int64_t last_q = 512;
  int64_t block = 128;
  bool original = false;  // variant "original": query-aware head classification
};

struct XAttentionParams {
  int64_t block = 128;
  int64_t stride = 8;
  double threshold = 0.9;
};

struct StreamingParams {
  int64_t sink = 4;
  int64_t window = 0;  // includes the query's own token
};

struct SnapKvParams {
  int64_t window = 256;
  int64_t pool = 21;
  int64_t keep_first = 4;
  int64_t keep_last = 128;
  int64_t token_capacity = 0;
  // ada_snapkv only: adaptive allocation across KV heads with this floor.
  bool adaptive = false;
  double floor = 0.2;
};

struct QuestParams {
  int64_t page = 16;
  bool gqa_shared = true;
  int64_t token_budget = 0;
};

struct OracleTopKParams {
  int64_t top_k = 0;
};

using MethodParams =
    std::variant<DenseParams, BlockSparseParams, VerticalSlashParams, FlexPrefillParams,
                 XAttentionParams, StreamingParams, SnapKvParams, QuestParams, OracleTopKParams>;

// Parses `params` for the catalog method `method`: fills defaults, checks types and the
// catalog's bounds. Unknown method or parameter, a missing parameter without default,
// a wrong type or a value out of bounds -> InvalidArgument naming the parameter.
// Sequence-dependent checks (budget vs length) happen when the method runs.
absl::StatusOr<MethodParams> ParseMethodParams(absl::string_view method, const ParamMap& params);

// Which rows a budget is for: a prefill of seq_len tokens (causal pairs), or one decode
// step over a context of seq_len tokens (compression = seq_len / tokens attended).
enum class Phase { kPrefill, kDecode };

// The budget parameter value for `compression` (>= 1) at sequence length
// `seq_len`, written into a copy of `params` under the method's budget parameter.
// streaming and oracle_topk map differently per phase; the SnapKV family and quest
// are decode methods (seq_len = the prompt / context length).
// Structural methods use the closed forms of docs/methods.md (nominal compression);
// compression 1 always gives the budget that makes the method dense. Threshold
// methods (flexprefill, xattention) depend on the data: FailedPrecondition, use
// CalibrateBudget (fidelity.h) or give gamma/threshold natively.
absl::StatusOr<ParamMap> ParamsForCompression(absl::string_view method, const ParamMap& params,
                                              double compression, int64_t seq_len,
                                              Phase phase = Phase::kPrefill);

// The nominal compression (causal query-key pairs / pairs computed) of `params` at
// `seq_len`; the inverse of ParamsForCompression. Threshold methods: FailedPrecondition.
absl::StatusOr<double> NominalCompression(absl::string_view method, const ParamMap& params,
                                          int64_t seq_len, Phase phase = Phase::kPrefill);

// Number of causal query-key pairs of a prefill of length n: n (n + 1) / 2.
inline double CausalPairs(int64_t n) { return 0.5 * static_cast<double>(n) * (n + 1); }

}  // namespace sf::kernels

#endif  // SF_KERNELS_CPU_METHOD_PARAMS_H_
