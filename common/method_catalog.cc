#include "common/method_catalog.h"

#include <limits>

namespace sf {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Defaults are the study's settings (The Sparse Frontier, Nawrot et al. 2025) unless
// docs/methods.md says otherwise.
constexpr MethodParam kBlockSparse[] = {
    {"block", ParamType::kInt, "16", 1, 4096, "", "query/key block size in tokens"},
    {"block_budget", ParamType::kInt, "", 1, kInf, "",
     "key blocks kept per query block (sink, diagonal and the block below it always kept)"},
};
constexpr MethodParam kVerticalSlash[] = {
    {"last_q", ParamType::kInt, "256", 1, kInf, "", "queries used to estimate the pattern"},
    {"sink", ParamType::kInt, "4", 0, kInf, "", "first columns always kept"},
    {"local", ParamType::kInt, "64", 0, kInf, "", "last diagonals always kept"},
    {"verticals", ParamType::kInt, "", 0, kInf, "", "vertical lines (columns) kept per head"},
    {"slashes", ParamType::kInt, "", 0, kInf, "",
     "slash lines (diagonals) kept per head (not given: equal to verticals)"},
};
constexpr MethodParam kFlexPrefill[] = {
    {"gamma", ParamType::kFloat, "0.65", 0, 1, "",
     "cumulative attention mass to reach (the study's alpha: 0.65 in its config)"},
    {"tau", ParamType::kFloat, "0.1", 0, 1, "",
     "JS-distance threshold for query-aware heads (variant original)"},
    {"min_budget", ParamType::kInt, "512", 0, kInf, "",
     "columns and diagonals always kept per head (the study's config: 512)"},
    {"last_q", ParamType::kInt, "512", 1, kInf, "",
     "last queries used to estimate columns and diagonals (the study's approximation_size)"},
    {"block", ParamType::kInt, "128", 1, 4096, "",
     "block size of query-aware heads and of the classifying query block (variant original)"},
    {"variant", ParamType::kString, "study", 0, 0, "study|original",
     "study: vertical-slash only; original: query-aware head classification"},
};
constexpr MethodParam kXAttention[] = {
    {"block", ParamType::kInt, "128", 1, 4096, "", "block size"},
    {"stride", ParamType::kInt, "8", 1, 128, "", "antidiagonal stride"},
    {"threshold", ParamType::kFloat, "0.9", 0, 1, "", "cumulative mass per block row"},
};
constexpr MethodParam kStreaming[] = {
    {"sink", ParamType::kInt, "4", 0, kInf, "", "first tokens always kept"},
    {"window", ParamType::kInt, "", 1, kInf, "", "local window in tokens"},
};
constexpr MethodParam kSnapKv[] = {
    {"window", ParamType::kInt, "256", 1, kInf, "", "observation window (last queries)"},
    {"pool", ParamType::kInt, "21", 1, 1025, "", "average-pooling kernel over scores (odd)"},
    {"keep_first", ParamType::kInt, "4", 0, kInf, "", "first tokens always kept"},
    {"keep_last", ParamType::kInt, "128", 0, kInf, "", "last tokens always kept"},
    {"token_capacity", ParamType::kInt, "", 1, kInf, "", "KV entries kept per head"},
};
constexpr MethodParam kAdaSnapKv[] = {
    {"window", ParamType::kInt, "256", 1, kInf, "", "observation window (last queries)"},
    {"pool", ParamType::kInt, "21", 1, 1025, "",
     "average-pooling kernel over the max-reduced scores (odd)"},
    {"keep_first", ParamType::kInt, "4", 0, kInf, "", "first tokens always kept"},
    {"keep_last", ParamType::kInt, "128", 0, kInf, "", "last tokens always kept"},
    {"floor", ParamType::kFloat, "0.2", 0, 1, "", "per-head floor as a fraction of capacity"},
    {"token_capacity", ParamType::kInt, "", 1, kInf, "",
     "average KV entries kept per head (adaptive across a layer's heads)"},
};
constexpr MethodParam kQuest[] = {
    {"page", ParamType::kInt, "16", 1, 4096, "", "tokens per page"},
    {"gqa_shared", ParamType::kBool, "true", 0, 0, "",
     "one page choice per GQA group instead of per query head"},
    {"token_budget", ParamType::kInt, "", 1, kInf, "", "tokens loaded per decode step"},
};
constexpr MethodParam kOracleTopK[] = {
    {"top_k", ParamType::kInt, "", 1, kInf, "", "keys kept per query (exact top-k by q.k)"},
};

constexpr MethodInfo kMethods[] = {
    {"dense", MethodPhase::kBoth, "", {}, "full causal attention"},
    {"block_sparse", MethodPhase::kPrefill, "block_budget", kBlockSparse,
     "top-k key blocks per query block by mean-pooled q.k"},
    {"vertical_slash", MethodPhase::kPrefill, "verticals", kVerticalSlash,
     "columns and diagonals chosen from the last queries' attention (MInference)"},
    {"flexprefill", MethodPhase::kPrefill, "gamma", kFlexPrefill,
     "smallest column/diagonal (or block) set reaching mass gamma"},
    {"xattention", MethodPhase::kPrefill, "threshold", kXAttention,
     "blocks chosen by strided antidiagonal sums up to a mass threshold"},
    {"streaming", MethodPhase::kBoth, "window", kStreaming,
     "A-shape: attention sinks plus a local window"},
    {"snapkv", MethodPhase::kDecode, "token_capacity", kSnapKv,
     "KV eviction after prefill by pooled observation-window attention"},
    {"ada_snapkv", MethodPhase::kDecode, "token_capacity", kAdaSnapKv,
     "SnapKV with capacity spread adaptively across a layer's heads"},
    {"quest", MethodPhase::kDecode, "token_budget", kQuest,
     "per-step page selection by key min/max bounds"},
    {"oracle_topk", MethodPhase::kBoth, "top_k", kOracleTopK,
     "exact top-k keys per query: the upper bound for selection methods"},
};

}  // namespace

std::span<const MethodInfo> AllMethods() { return kMethods; }

const MethodInfo* FindMethod(absl::string_view name) {
  for (const MethodInfo& m : kMethods) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

const MethodParam* FindParam(const MethodInfo& method, absl::string_view param) {
  for (const MethodParam& p : method.params) {
    if (param == p.name) return &p;
  }
  return nullptr;
}

const char* PhaseName(MethodPhase phase) {
  switch (phase) {
    case MethodPhase::kPrefill:
      return "prefill";
    case MethodPhase::kDecode:
      return "decode";
    case MethodPhase::kBoth:
      return "both";
  }
  return "?";
}

}  // namespace sf
