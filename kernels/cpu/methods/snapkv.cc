// snapkv and ada_snapkv on the CPU: the prompt's last `window` queries score every
// prompt key, the scores are reduced over the window and the GQA group and pooled, and
// each KV head keeps its top tokens (ada_snapkv: a floor per head, the rest of the
// layer's budget to the best tokens of any head); decode steps attend to the kept
// tokens plus every generated token (the study's SnapKV / Ada-SnapKV; docs/methods.md).
#include "kernels/cpu/methods/snapkv.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cpu/cpu_method.h"
#include "kernels/cpu/methods/method_list.h"
#include "kernels/cpu/selection_internal.h"
#include "kernels/cpu/shared_stats.h"
#include "methods/registry.h"

namespace sf::kernels {
namespace {

using Importance = std::vector<std::vector<double>>;  // [Hkv][prompt]

using Params = SnapKvParams;

// Centred average pooling with zero padding, divided by the kernel size (PyTorch's
// avg_pool1d with padding k/2 and count_include_pad, as the study uses).
std::vector<double> AvgPool(const std::vector<double>& x, int64_t kernel) {
  const int64_t n = static_cast<int64_t>(x.size()), half = kernel / 2;
  std::vector<double> prefix(n + 1, 0.0);
  for (int64_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + x[i];
  std::vector<double> out(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t b = std::max<int64_t>(i - half, 0), e = std::min<int64_t>(i + half + 1, n);
    out[i] = (prefix[e] - prefix[b]) / static_cast<double>(kernel);
  }
  return out;
}

absl::Status Check(const Params& p, int64_t prompt) {
  const char* name = p.adaptive ? "ada_snapkv" : "snapkv";
  if (p.token_capacity > prompt) {
    return absl::InvalidArgumentError(absl::StrCat("parameter 'token_capacity' of method ", name,
                                                   " is ", p.token_capacity,
                                                   ", larger than the prompt (", prompt, ")"));
  }
  const int64_t forced_count = std::min(p.keep_first + p.keep_last, prompt);
  if (p.token_capacity < forced_count) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter 'token_capacity' of method ", name, " is ", p.token_capacity,
                     ", below keep_first + keep_last (", forced_count, ")"));
  }
  return absl::OkStatus();
}

// Importance per KV head: window- and group-reduced attention of the observed queries,
// averaged over the group (snapkv) and maxed (ada_snapkv), from the same softmax rows.
std::pair<Importance, Importance> ImportanceBoth(int64_t window, int64_t pool,
                                                 const TensorView& obs, const TensorView& keys) {
  const int64_t prompt = keys.len, hkv = keys.heads, group = obs.heads / keys.heads;
  const int64_t w = std::min(window, obs.len);
  Importance mean(hkv, std::vector<double>(prompt, 0.0)), mx = mean;
  ParallelFor(hkv, 0, [&](int64_t kvh) {
    std::vector<double>& sum_imp = mean[kvh];
    std::vector<double>& max_imp = mx[kvh];
    std::vector<double> prob;
    for (int64_t g = 0; g < group; ++g) {
      const int64_t h = kvh * group + g;
      for (int64_t i = obs.len - w; i < obs.len; ++i) {
        const int64_t pos = prompt - obs.len + i;
        internal::CausalSoftmaxRow(obs.Row(h, i), keys, kvh, pos, &prob);
        for (int64_t j = 0; j <= pos; ++j) {
          sum_imp[j] = sum_imp[j] + prob[j] / group;
          max_imp[j] = std::max(max_imp[j], prob[j]);
        }
      }
    }
    sum_imp = AvgPool(sum_imp, pool);
    max_imp = AvgPool(max_imp, pool);
  });
  return {std::move(mean), std::move(mx)};
}

// The kept tokens from the importance; InvalidArgument for a bad capacity.
absl::StatusOr<KeptTokens> KeptFrom(const Params& p, const Importance& importance,
                                    const TensorView& obs, const TensorView& keys) {
  const int64_t prompt = keys.len, hkv = keys.heads;
  SF_RETURN_IF_ERROR(Check(p, prompt));
  const int64_t forced_count = std::min(p.keep_first + p.keep_last, prompt);
  const int64_t w = std::min(p.window, obs.len);
  std::vector<char> forced(prompt, 0);
  for (int64_t j = 0; j < std::min(p.keep_first, prompt); ++j) forced[j] = 1;
  for (int64_t j = std::max<int64_t>(prompt - p.keep_last, 0); j < prompt; ++j) forced[j] = 1;
  KeptTokens kept;
  kept.per_kv_head.resize(hkv);
  kept.estimation_flops = 2.0 * obs.heads * w * static_cast<double>(prompt) * keys.dim;
  if (!p.adaptive) {
    for (int64_t kvh = 0; kvh < hkv; ++kvh) {
      kept.per_kv_head[kvh] = internal::TopKIndices(importance[kvh], forced, p.token_capacity);
    }
    return kept;
  }
  // Ada-SnapKV: a floor per head, the rest of the layer's budget to the best tokens of
  // any head.
  const int64_t floor_count =
      std::min(prompt, std::max(static_cast<int64_t>(p.token_capacity * p.floor), forced_count));
  std::vector<std::vector<char>> chosen(hkv, std::vector<char>(prompt, 0));
  for (int64_t kvh = 0; kvh < hkv; ++kvh) {
    for (int64_t j : internal::TopKIndices(importance[kvh], forced, floor_count)) {
      chosen[kvh][j] = 1;
    }
  }
  const int64_t remaining = std::max<int64_t>(p.token_capacity * hkv - floor_count * hkv, 0);
  std::vector<std::pair<double, int64_t>> pool;  // (importance, flat index) not yet chosen
  for (int64_t kvh = 0; kvh < hkv; ++kvh) {
    for (int64_t j = 0; j < prompt; ++j) {
      if (!chosen[kvh][j]) pool.push_back({importance[kvh][j], kvh * prompt + j});
    }
  }
  const int64_t take = std::min<int64_t>(remaining, pool.size());
  std::partial_sort(pool.begin(), pool.begin() + take, pool.end(),
                    [](const auto& a, const auto& b) {
                      if (a.first != b.first) return a.first > b.first;
                      return a.second < b.second;
                    });
  for (int64_t x = 0; x < take; ++x) chosen[pool[x].second / prompt][pool[x].second % prompt] = 1;
  for (int64_t kvh = 0; kvh < hkv; ++kvh) {
    for (int64_t j = 0; j < prompt; ++j) {
      if (chosen[kvh][j]) kept.per_kv_head[kvh].push_back(j);
    }
  }
  return kept;
}

// Decode steps attend to the kept prompt tokens plus every generated one.
SelectionResult KeptSelection(const AttentionInput& steps, const KeptTokens& kept) {
  const int64_t prompt = steps.q_offset;
  std::vector<internal::HeadPattern> heads(steps.q.heads);
  for (int64_t h = 0; h < steps.q.heads; ++h) {
    heads[h].kept = kept.per_kv_head[h / steps.group()];
    heads[h].fresh_from = prompt;
  }
  return internal::PatternResult(std::move(heads), steps.q_offset, kept.estimation_flops);
}

class SnapKv : public CpuMethod {
 public:
  SnapKv(const MethodInfo& info, Params p) : CpuMethod(info), p_(p) {}

  absl::StatusOr<KeptTokens> CompressKv(const TensorView& obs,
                                        const TensorView& keys) const override {
    if (obs.len < 1 || obs.heads % keys.heads != 0 || obs.len > keys.len) {
      return absl::InvalidArgumentError(absl::StrCat(
          info().name, ": observation queries must be the prompt's last rows, [Hq, W<=", keys.len,
          ", D] with Hq a multiple of ", keys.heads));
    }
    SF_RETURN_IF_ERROR(Check(p_, keys.len));
    auto both = ImportanceBoth(p_.window, p_.pool, obs, keys);
    return KeptFrom(p_, p_.adaptive ? both.second : both.first, obs, keys);
  }

  absl::StatusOr<SelectionResult> SelectDecode(const AttentionInput& steps,
                                               const TensorView& obs) const override {
    SF_ASSIGN_OR_RETURN(KeptTokens kept, CompressKv(obs, steps.k.Rows(0, steps.q_offset)));
    return KeptSelection(steps, kept);
  }

  std::optional<absl::StatusOr<SelectionResult>> SelectShared(const AttentionInput& in,
                                                              const TensorView& obs, Phase phase,
                                                              SharedStats& stats) const override {
    const int64_t prompt = in.q_offset;
    if (phase != Phase::kDecode || obs.len < 1 || obs.len > prompt) return std::nullopt;
    const TensorView keys = in.k.Rows(0, prompt);
    const Importance& importance = SharedImportance(obs, keys, stats);
    absl::StatusOr<KeptTokens> kept = KeptFrom(p_, importance, obs, keys);
    if (!kept.ok()) return kept.status();
    return KeptSelection(in, *kept);
  }

  int64_t ObservationRows(int64_t available) const override {
    return std::min<int64_t>(p_.window, available);
  }

 private:
  // snapkv and ada_snapkv share the softmax rows: both reductions are stored at once.
  const Importance& SharedImportance(const TensorView& obs, const TensorView& keys,
                                     SharedStats& stats) const {
    const std::string mean_key = absl::StrCat("snapkv.importance/", p_.window, "/", p_.pool);
    const std::string max_key = absl::StrCat("ada_snapkv.importance/", p_.window, "/", p_.pool);
    const std::string& key = p_.adaptive ? max_key : mean_key;
    return stats.Get<Importance>(key, [&] {
      auto both = ImportanceBoth(p_.window, p_.pool, obs, keys);
      stats.Put<Importance>(p_.adaptive ? mean_key : max_key,
                            p_.adaptive ? std::move(both.first) : std::move(both.second));
      return p_.adaptive ? std::move(both.second) : std::move(both.first);
    });
  }

  Params p_;
};

// The prompt's cache is what the budget counts in decode.
absl::StatusOr<ParamMap> Calibrate(const Calibration& c) {
  return CalibrateClosedForm(c, c.phase == Phase::kDecode ? c.prompt : c.length);
}

}  // namespace

absl::StatusOr<SnapKvParams> SnapKvParamsFrom(const ParamReader& r) {
  SnapKvParams p;
  SF_ASSIGN_OR_RETURN(p.window, r.Int("window"));
  SF_ASSIGN_OR_RETURN(p.pool, r.Int("pool"));
  SF_ASSIGN_OR_RETURN(p.keep_first, r.Int("keep_first"));
  SF_ASSIGN_OR_RETURN(p.keep_last, r.Int("keep_last"));
  SF_ASSIGN_OR_RETURN(p.token_capacity, r.Int("token_capacity"));
  if (FindParam(r.method(), "floor") != nullptr) {  // ada_snapkv
    p.adaptive = true;
    SF_ASSIGN_OR_RETURN(p.floor, r.Number("floor"));
  }
  return p;
}

std::vector<std::vector<double>> SnapKvImportance(const SnapKvParams& p, const TensorView& obs,
                                                  const TensorView& keys) {
  auto both = ImportanceBoth(p.window, p.pool, obs, keys);
  return p.adaptive ? std::move(both.second) : std::move(both.first);
}

MethodParams SnapKvMethodParams(const SnapKvParams& p) {
  const MethodInfo* method = FindMethod((p.adaptive ? "ada_snapkv" : "snapkv"));
  return MethodParams(std::make_shared<SnapKv>(*method, p));
}

CpuMethodEntry SnapKvCpu() {
  return {.name = "snapkv",
          .bind = [](const ParamReader& r) -> absl::StatusOr<std::shared_ptr<const CpuMethod>> {
            SF_ASSIGN_OR_RETURN(const Params p, SnapKvParamsFrom(r));
            return std::make_shared<SnapKv>(r.method(), p);
          },
          .calibrate = Calibrate};
}

CpuMethodEntry AdaSnapKvCpu() {
  return {.name = "ada_snapkv",
          .bind = [](const ParamReader& r) -> absl::StatusOr<std::shared_ptr<const CpuMethod>> {
            SF_ASSIGN_OR_RETURN(const Params p, SnapKvParamsFrom(r));
            return std::make_shared<SnapKv>(r.method(), p);
          },
          .calibrate = Calibrate};
}

}  // namespace sf::kernels
