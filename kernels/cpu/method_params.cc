#include "kernels/cpu/method_params.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/method_catalog.h"
#include "common/status.h"

namespace sf::kernels {
namespace {

// Reads one method's parameters with catalog defaults and bounds.
class ParamReader {
 public:
  ParamReader(const MethodInfo& info, const ParamMap& params) : info_(info), params_(params) {}

  absl::Status CheckNamesKnown() const {
    for (const auto& [name, value] : params_) {
      if (FindParam(info_, name) == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("method ", info_.name, " has no parameter '",
                                                       name, "'; see sfctl fidelity --help"));
      }
    }
    return absl::OkStatus();
  }

  bool Has(absl::string_view name) const { return params_.count(std::string(name)) > 0; }

  absl::StatusOr<double> Number(absl::string_view name) const {
    const MethodParam* p = FindParam(info_, name);
    if (p == nullptr) return absl::InternalError(absl::StrCat("catalog lacks ", name));
    double value = 0;
    auto it = params_.find(std::string(name));
    if (it == params_.end()) {
      if (*p->default_value == '\0') {
        return absl::InvalidArgumentError(absl::StrCat("parameter '", name, "' of method ",
                                                       info_.name,
                                                       " is required (or give a compression)"));
      }
      value = std::stod(p->default_value);
    } else if (const int64_t* i = std::get_if<int64_t>(&it->second)) {
      value = static_cast<double>(*i);
    } else if (const double* d = std::get_if<double>(&it->second)) {
      if (p->type == ParamType::kInt && std::floor(*d) != *d) {
        return absl::InvalidArgumentError(absl::StrCat(
            "parameter '", name, "' of method ", info_.name, " must be an integer, got ", *d));
      }
      value = *d;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("parameter '", name, "' of method ", info_.name, " must be a number"));
    }
    if (!(value >= p->min && value <= p->max)) {
      return absl::InvalidArgumentError(absl::StrCat("parameter '", name, "' of method ",
                                                     info_.name, " is ", value, "; allowed [",
                                                     p->min, ", ", p->max, "]"));
    }
    return value;
  }

  absl::StatusOr<int64_t> Int(absl::string_view name) const {
    SF_ASSIGN_OR_RETURN(double v, Number(name));
    return static_cast<int64_t>(v);
  }

  absl::StatusOr<bool> Bool(absl::string_view name) const {
    const MethodParam* p = FindParam(info_, name);
    auto it = params_.find(std::string(name));
    if (it == params_.end()) return std::string(p->default_value) == "true";
    if (const bool* b = std::get_if<bool>(&it->second)) return *b;
    return absl::InvalidArgumentError(
        absl::StrCat("parameter '", name, "' of method ", info_.name, " must be true or false"));
  }

  absl::StatusOr<std::string> Choice(absl::string_view name) const {
    const MethodParam* p = FindParam(info_, name);
    auto it = params_.find(std::string(name));
    std::string value = p->default_value;
    if (it != params_.end()) {
      const std::string* s = std::get_if<std::string>(&it->second);
      if (s == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("parameter '", name, "' of method ",
                                                       info_.name, " must be one of ", p->choices));
      }
      value = *s;
    }
    for (absl::string_view c : absl::StrSplit(p->choices, '|')) {
      if (c == value) return value;
    }
    return absl::InvalidArgumentError(absl::StrCat("parameter '", name, "' of method ", info_.name,
                                                   " is '", value, "'; allowed: ", p->choices));
  }

 private:
  const MethodInfo& info_;
  const ParamMap& params_;
};

// Causal pairs covered by sinks + a window (window counts the query itself).
double StreamingPairs(int64_t sink, int64_t window, int64_t n) {
  const int64_t span = sink + window;
  const int64_t full = std::min(n, span);  // rows that see every earlier key
  return CausalPairs(full) + static_cast<double>(n - full) * span;
}

double TopKPairs(int64_t k, int64_t n) {
  const int64_t full = std::min(n, k);
  return CausalPairs(full) + static_cast<double>(n - full) * k;
}

double BlockSparseCompression(int64_t block, int64_t budget, int64_t n) {
  const int64_t nb = (n + block - 1) / block;
  const int64_t k = std::min(budget, nb);
  const double total = 0.5 * nb * (nb + 1);
  const double selected = 0.5 * k * (k + 1) + static_cast<double>(nb - k) * k;
  return total / selected;
}

// The integer in [lo, hi] whose compression is closest to `target`, for compression
// decreasing in the budget; ties go to the larger budget (the more accurate one).
int64_t ClosestBudget(int64_t lo, int64_t hi, double target,
                      const std::function<double(int64_t)>& compression) {
  if (lo >= hi) return hi;
  // Binary search the largest budget whose compression is still >= target.
  int64_t a = lo, b = hi;
  while (a < b) {
    const int64_t mid = a + (b - a + 1) / 2;
    if (compression(mid) >= target) {
      a = mid;
    } else {
      b = mid - 1;
    }
  }
  int64_t best = a;
  if (a + 1 <= hi && std::abs(compression(a + 1) - target) <= std::abs(compression(a) - target)) {
    best = a + 1;
  }
  return best;
}

}  // namespace

absl::StatusOr<MethodParams> ParseMethodParams(absl::string_view method, const ParamMap& params) {
  const MethodInfo* info = FindMethod(method);
  if (info == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown attention method '", method, "'; see sfctl fidelity --help"));
  }
  ParamReader r(*info, params);
  SF_RETURN_IF_ERROR(r.CheckNamesKnown());
  const std::string name(method);
  if (name == "dense") return DenseParams{};
  if (name == "block_sparse") {
    BlockSparseParams p;
    SF_ASSIGN_OR_RETURN(p.block, r.Int("block"));
    SF_ASSIGN_OR_RETURN(p.block_budget, r.Int("block_budget"));
    return p;
  }
  if (name == "vertical_slash") {
    VerticalSlashParams p;
    SF_ASSIGN_OR_RETURN(p.last_q, r.Int("last_q"));
    SF_ASSIGN_OR_RETURN(p.sink, r.Int("sink"));
    SF_ASSIGN_OR_RETURN(p.local, r.Int("local"));
    SF_ASSIGN_OR_RETURN(p.verticals, r.Int("verticals"));
    if (r.Has("slashes")) {
      SF_ASSIGN_OR_RETURN(p.slashes, r.Int("slashes"));
    } else {
      p.slashes = p.verticals;  // the study sets both sizes equal
    }
    return p;
  }
  if (name == "flexprefill") {
    FlexPrefillParams p;
    SF_ASSIGN_OR_RETURN(p.gamma, r.Number("gamma"));
    SF_ASSIGN_OR_RETURN(p.tau, r.Number("tau"));
    SF_ASSIGN_OR_RETURN(p.min_budget, r.Int("min_budget"));
    SF_ASSIGN_OR_RETURN(p.last_q, r.Int("last_q"));
    SF_ASSIGN_OR_RETURN(p.block, r.Int("block"));
    SF_ASSIGN_OR_RETURN(std::string variant, r.Choice("variant"));
    p.original = variant == "original";
    return p;
  }
  if (name == "xattention") {
    XAttentionParams p;
    SF_ASSIGN_OR_RETURN(p.block, r.Int("block"));
    SF_ASSIGN_OR_RETURN(p.stride, r.Int("stride"));
    SF_ASSIGN_OR_RETURN(p.threshold, r.Number("threshold"));
    return p;
  }
  if (name == "streaming") {
    StreamingParams p;
    SF_ASSIGN_OR_RETURN(p.sink, r.Int("sink"));
    SF_ASSIGN_OR_RETURN(p.window, r.Int("window"));
    return p;
  }
  if (name == "snapkv" || name == "ada_snapkv") {
    SnapKvParams p;
    p.adaptive = name == "ada_snapkv";
    SF_ASSIGN_OR_RETURN(p.window, r.Int("window"));
    SF_ASSIGN_OR_RETURN(p.pool, r.Int("pool"));
    SF_ASSIGN_OR_RETURN(p.keep_first, r.Int("keep_first"));
    SF_ASSIGN_OR_RETURN(p.keep_last, r.Int("keep_last"));
    SF_ASSIGN_OR_RETURN(p.token_capacity, r.Int("token_capacity"));
    if (p.adaptive) {
      SF_ASSIGN_OR_RETURN(p.floor, r.Number("floor"));
    }
    if (p.pool % 2 == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "parameter 'pool' of method ", name, " must be odd (centred pooling), got ", p.pool));
    }
    return p;
  }
  if (name == "quest") {
    QuestParams p;
    SF_ASSIGN_OR_RETURN(p.page, r.Int("page"));
    SF_ASSIGN_OR_RETURN(p.gqa_shared, r.Bool("gqa_shared"));
    SF_ASSIGN_OR_RETURN(p.token_budget, r.Int("token_budget"));
    if (p.token_budget % p.page != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("parameter 'token_budget' of method quest (", p.token_budget,
                       ") must be a multiple of 'page' (", p.page, ")"));
    }
    return p;
  }
  if (name == "oracle_topk") {
    OracleTopKParams p;
    SF_ASSIGN_OR_RETURN(p.top_k, r.Int("top_k"));
    return p;
  }
  return absl::InternalError(absl::StrCat("method ", name, " is in the catalog but not here"));
}

absl::StatusOr<ParamMap> ParamsForCompression(absl::string_view method, const ParamMap& params,
                                              double compression, int64_t seq_len, Phase phase) {
  const MethodInfo* info = FindMethod(method);
  if (info == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown attention method '", method, "'"));
  }
  if (!(compression >= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("compression must be >= 1 (1 = dense), got ", compression));
  }
  if (seq_len < 1) {
    return absl::InvalidArgumentError(absl::StrCat("sequence length must be >= 1, got ", seq_len));
  }
  ParamMap out = params;
  const std::string name(method);
  if (name == "dense") return out;
  if (name == "flexprefill" || name == "xattention") {
    return absl::FailedPreconditionError(
        absl::StrCat("method ", name, " sets its budget by a mass threshold ('", info->budget_param,
                     "'); its compression depends on the data: give '", info->budget_param,
                     "' natively or calibrate it on inputs (sfctl fidelity does)"));
  }
  // Parse with a placeholder budget so that the other parameters are checked and typed.
  ParamMap probe = params;
  probe[info->budget_param] = int64_t{1};
  if (name == "quest") {
    const auto page_it = params.find("page");
    int64_t page = 16;
    if (page_it != params.end() && std::holds_alternative<int64_t>(page_it->second)) {
      page = std::get<int64_t>(page_it->second);
    }
    probe["token_budget"] = page;
  }
  SF_ASSIGN_OR_RETURN(MethodParams typed, ParseMethodParams(method, probe));
  const int64_t n = seq_len;
  const double total = CausalPairs(n);
  int64_t budget = 0;
  if (auto* p = std::get_if<BlockSparseParams>(&typed)) {
    const int64_t nb = (n + p->block - 1) / p->block;
    budget = compression <= 1.0
                 ? nb
                 : ClosestBudget(std::min<int64_t>(3, nb), nb, compression,
                                 [&](int64_t k) { return BlockSparseCompression(p->block, k, n); });
  } else if (auto* vs = std::get_if<VerticalSlashParams>(&typed)) {
    const int64_t lo = std::min(n, std::max(vs->sink, vs->local));
    budget =
        compression <= 1.0 ? n : std::clamp<int64_t>(std::llround(n / (2.0 * compression)), lo, n);
    out.erase("slashes");
  } else if (auto* st = std::get_if<StreamingParams>(&typed)) {
    const int64_t sink = st->sink;
    if (phase == Phase::kDecode) {
      // One step attends sink + window tokens of the context.
      budget = std::clamp<int64_t>(std::llround(n / compression) - sink, 1, n);
    } else {
      budget = compression <= 1.0 ? n : ClosestBudget(1, n, compression, [&](int64_t w) {
        return total / StreamingPairs(sink, w, n);
      });
    }
  } else if (std::holds_alternative<OracleTopKParams>(typed) && phase == Phase::kDecode) {
    budget = std::clamp<int64_t>(std::llround(n / compression), 1, n);
  } else if (std::holds_alternative<SnapKvParams>(typed)) {
    budget = std::clamp<int64_t>(std::llround(n / compression), 1, n);
  } else if (auto* q = std::get_if<QuestParams>(&typed)) {
    const int64_t pages = (n + q->page - 1) / q->page;
    budget =
        q->page * (compression <= 1.0
                       ? pages
                       : std::clamp<int64_t>(std::llround(n / (compression * q->page)), 1, pages));
  } else if (std::holds_alternative<OracleTopKParams>(typed)) {
    budget = compression <= 1.0 ? n : ClosestBudget(1, n, compression, [&](int64_t k) {
      return total / TopKPairs(k, n);
    });
  }
  out[info->budget_param] = budget;
  return out;
}

absl::StatusOr<double> NominalCompression(absl::string_view method, const ParamMap& params,
                                          int64_t seq_len, Phase phase) {
  SF_ASSIGN_OR_RETURN(MethodParams typed, ParseMethodParams(method, params));
  const int64_t n = seq_len;
  const double total = CausalPairs(n);
  if (std::holds_alternative<DenseParams>(typed)) return 1.0;
  if (auto* p = std::get_if<BlockSparseParams>(&typed)) {
    return BlockSparseCompression(p->block, p->block_budget, n);
  }
  if (auto* p = std::get_if<VerticalSlashParams>(&typed)) {
    const double pairs = 0.5 * static_cast<double>(p->verticals + p->slashes) * (n + 1);
    return std::max(1.0, total / pairs);
  }
  if (auto* p = std::get_if<StreamingParams>(&typed)) {
    if (phase == Phase::kDecode) {
      return std::max(1.0, static_cast<double>(n) / std::min(n, p->sink + p->window));
    }
    return total / StreamingPairs(p->sink, p->window, n);
  }
  if (auto* p = std::get_if<SnapKvParams>(&typed)) {
    return std::max(1.0, static_cast<double>(n) / p->token_capacity);
  }
  if (auto* p = std::get_if<QuestParams>(&typed)) {
    return std::max(1.0, static_cast<double>(n) / p->token_budget);
  }
  if (auto* p = std::get_if<OracleTopKParams>(&typed)) {
    if (phase == Phase::kDecode) return static_cast<double>(n) / std::min(n, p->top_k);
    return total / TopKPairs(p->top_k, n);
  }
  return absl::FailedPreconditionError(
      absl::StrCat("method ", method,
                   " has no nominal compression: its budget is a mass threshold; "
                   "read the measured compression instead"));
}

}  // namespace sf::kernels
