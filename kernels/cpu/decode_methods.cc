// Decode-phase methods: KV eviction after prefill (SnapKV family, streaming) and
// per-step page selection (Quest). docs/methods.md gives the algorithms and sources.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/selection_internal.h"

namespace sf::kernels {
namespace {

using internal::CausalSoftmaxRow;
using internal::HeadPattern;
using internal::kAll;
using internal::TopKIndices;

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

absl::Status CheckSnapKv(const SnapKvParams& p, int64_t prompt) {
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

absl::StatusOr<KeptTokens> SnapKv(const SnapKvParams& p, const TensorView& obs,
                                  const TensorView& keys) {
  SF_RETURN_IF_ERROR(CheckSnapKv(p, keys.len));
  return internal::SnapKvFrom(p, internal::SnapKvImportance(p, obs, keys), obs, keys);
}

}  // namespace

namespace internal {

std::vector<std::vector<double>> SnapKvImportance(const SnapKvParams& p, const TensorView& obs,
                                                  const TensorView& keys) {
  auto both = SnapKvImportanceBoth(p.window, p.pool, obs, keys);
  return std::move(p.adaptive ? both.second : both.first);
}

std::pair<std::vector<std::vector<double>>, std::vector<std::vector<double>>> SnapKvImportanceBoth(
    int64_t window, int64_t pool, const TensorView& obs, const TensorView& keys) {
  const int64_t prompt = keys.len, hkv = keys.heads, group = obs.heads / keys.heads;
  const int64_t w = std::min(window, obs.len);
  // Importance per KV head: window- and group-reduced attention of the observed queries,
  // averaged over the group (snapkv) and maxed (ada_snapkv), from the same softmax rows.
  std::vector<std::vector<double>> mean(hkv, std::vector<double>(prompt, 0.0)), mx = mean;
  ParallelFor(hkv, 0, [&](int64_t kvh) {
    std::vector<double>& sum_imp = mean[kvh];
    std::vector<double>& max_imp = mx[kvh];
    std::vector<double> prob;
    for (int64_t g = 0; g < group; ++g) {
      const int64_t h = kvh * group + g;
      for (int64_t i = obs.len - w; i < obs.len; ++i) {
        const int64_t pos = prompt - obs.len + i;
        CausalSoftmaxRow(obs.Row(h, i), keys, kvh, pos, &prob);
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

absl::StatusOr<KeptTokens> SnapKvFrom(const SnapKvParams& p,
                                      const std::vector<std::vector<double>>& importance,
                                      const TensorView& obs, const TensorView& keys) {
  const int64_t prompt = keys.len, hkv = keys.heads;
  SF_RETURN_IF_ERROR(CheckSnapKv(p, prompt));
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
      kept.per_kv_head[kvh] = TopKIndices(importance[kvh], forced, p.token_capacity);
    }
    return kept;
  }
  // Ada-SnapKV: a floor per head, the rest of the layer's budget to the best tokens of
  // any head.
  const int64_t floor_count =
      std::min(prompt, std::max(static_cast<int64_t>(p.token_capacity * p.floor), forced_count));
  std::vector<std::vector<char>> chosen(hkv, std::vector<char>(prompt, 0));
  for (int64_t kvh = 0; kvh < hkv; ++kvh) {
    for (int64_t j : TopKIndices(importance[kvh], forced, floor_count)) chosen[kvh][j] = 1;
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

}  // namespace internal

absl::StatusOr<KeptTokens> CompressKv(absl::string_view method, const MethodParams& params,
                                      const TensorView& observation_q, const TensorView& keys) {
  const std::string name(method);
  KeptTokens kept;
  kept.per_kv_head.resize(keys.heads);
  if (name == "dense") {
    for (auto& k : kept.per_kv_head) {
      k.resize(keys.len);
      std::iota(k.begin(), k.end(), 0);
    }
    return kept;
  }
  if (name == "streaming") {
    const auto* p = std::get_if<StreamingParams>(&params);
    if (p == nullptr) return absl::InvalidArgumentError("parameters are not streaming's");
    for (auto& k : kept.per_kv_head) {
      for (int64_t j = 0; j < keys.len; ++j) {
        if (j < p->sink || j >= keys.len - p->window) k.push_back(j);
      }
    }
    return kept;
  }
  if (name == "snapkv" || name == "ada_snapkv") {
    const auto* p = std::get_if<SnapKvParams>(&params);
    if (p == nullptr) return absl::InvalidArgumentError("parameters are not snapkv's");
    if (observation_q.len < 1 || observation_q.heads % keys.heads != 0 ||
        observation_q.len > keys.len) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": observation queries must be the prompt's last rows, [Hq, W<=", keys.len,
          ", D] with Hq a multiple of ", keys.heads));
    }
    return SnapKv(*p, observation_q, keys);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("method ", name, " does not compress the KV cache after prefill"));
}

QuestPageIndex::QuestPageIndex(const TensorView& keys, int64_t page)
    : page_(page), dim_(keys.dim), kv_heads_(keys.heads) {
  Append(keys);
}

void QuestPageIndex::Append(const TensorView& keys) {
  const int64_t pages = (keys.len + page_ - 1) / page_;
  if (pages > pages_capacity_) {
    // Re-layout [kv_heads, pages, dim] with room to grow.
    const int64_t cap = std::max<int64_t>(pages, 2 * pages_capacity_);
    std::vector<float> mn(kv_heads_ * cap * dim_, INFINITY), mx(kv_heads_ * cap * dim_, -INFINITY);
    for (int64_t h = 0; h < kv_heads_; ++h) {
      for (int64_t pg = 0; pg < pages_capacity_; ++pg) {
        std::copy_n(&min_[(h * pages_capacity_ + pg) * dim_], dim_, &mn[(h * cap + pg) * dim_]);
        std::copy_n(&max_[(h * pages_capacity_ + pg) * dim_], dim_, &mx[(h * cap + pg) * dim_]);
      }
    }
    min_ = std::move(mn);
    max_ = std::move(mx);
    pages_capacity_ = cap;
  }
  for (int64_t h = 0; h < kv_heads_; ++h) {
    for (int64_t j = len_; j < keys.len; ++j) {
      const float* k = keys.Row(h, j);
      float* mn = &min_[(h * pages_capacity_ + j / page_) * dim_];
      float* mx = &max_[(h * pages_capacity_ + j / page_) * dim_];
      for (int64_t x = 0; x < dim_; ++x) {
        mn[x] = std::min(mn[x], k[x]);
        mx[x] = std::max(mx[x], k[x]);
      }
    }
  }
  len_ = std::max(len_, keys.len);
}

std::vector<std::vector<int64_t>> QuestPageIndex::Select(const TensorView& q, int64_t row,
                                                         int64_t budget_pages,
                                                         bool gqa_shared) const {
  const int64_t hq = q.heads, group = hq / kv_heads_;
  const int64_t current = (len_ - 1) / page_;
  std::vector<std::vector<int64_t>> out(hq);
  if (current <= budget_pages) {
    for (auto& o : out) {
      o.resize(current + 1);
      std::iota(o.begin(), o.end(), 0);
    }
    return out;
  }
  std::vector<std::vector<double>> score(hq, std::vector<double>(current, 0.0));
  for (int64_t h = 0; h < hq; ++h) {
    const int64_t kvh = h / group;
    const float* qr = q.Row(h, row);
    for (int64_t pg = 0; pg < current; ++pg) {
      const float* mn = &min_[(kvh * pages_capacity_ + pg) * dim_];
      const float* mx = &max_[(kvh * pages_capacity_ + pg) * dim_];
      double s = 0;
      for (int64_t x = 0; x < dim_; ++x) {
        s += std::max(static_cast<double>(qr[x]) * mn[x], static_cast<double>(qr[x]) * mx[x]);
      }
      score[h][pg] = s;
    }
  }
  for (int64_t h = 0; h < hq; ++h) {
    std::vector<double> s = score[h];
    if (gqa_shared) {
      const int64_t first = (h / group) * group;
      std::fill(s.begin(), s.end(), 0.0);
      for (int64_t g = first; g < first + group; ++g) {
        for (int64_t pg = 0; pg < current; ++pg) s[pg] += score[g][pg];
      }
    }
    out[h] = TopKIndices(s, {}, budget_pages);
    out[h].push_back(current);
  }
  return out;
}

absl::StatusOr<AttentionResult> DecodeAttention(absl::string_view method,
                                                const MethodParams& params,
                                                const AttentionInput& steps,
                                                const TensorView& observation_q) {
  SF_ASSIGN_OR_RETURN(SelectionResult s, DecodeSelect(method, params, steps, observation_q));
  AttentionResult r = AttendSelected(steps, std::move(s.selection));
  r.estimation_flops = s.estimation_flops;
  return r;
}

absl::StatusOr<SelectionResult> DecodeSelect(absl::string_view method, const MethodParams& params,
                                             const AttentionInput& steps,
                                             const TensorView& observation_q) {
  SF_RETURN_IF_ERROR(ValidateInput(steps));
  const std::string name(method);
  const int64_t prompt = steps.q_offset;
  if (prompt < 1) {
    return absl::InvalidArgumentError(
        "decode: the steps' q_offset (the prompt length) must be >= 1");
  }
  if (name == "dense" || name == "streaming" || name == "oracle_topk") {
    // The same rule per step as in prefill: sinks + rolling window, or exact top-k.
    return PrefillSelect(method, params, steps);
  }
  std::vector<HeadPattern> heads(steps.q.heads);
  double est_flops = 0;
  if (name == "snapkv" || name == "ada_snapkv") {
    SF_ASSIGN_OR_RETURN(KeptTokens kept,
                        CompressKv(method, params, observation_q, steps.k.Rows(0, prompt)));
    for (int64_t h = 0; h < steps.q.heads; ++h) {
      heads[h].kept = kept.per_kv_head[h / steps.group()];
      heads[h].fresh_from = prompt;
    }
    est_flops = kept.estimation_flops;
  } else if (name == "quest") {
    const auto* p = std::get_if<QuestParams>(&params);
    if (p == nullptr) return absl::InvalidArgumentError("parameters are not quest's");
    const int64_t max_budget = (steps.k.len + p->page - 1) / p->page * p->page;
    if (p->token_budget > max_budget) {
      return absl::InvalidArgumentError(absl::StrCat("parameter 'token_budget' of method quest is ",
                                                     p->token_budget,
                                                     ", larger than the sequence (", steps.k.len,
                                                     " tokens, ", max_budget / p->page, " pages)"));
    }
    QuestPageIndex index(steps.k.Rows(0, prompt), p->page);
    for (int64_t h = 0; h < steps.q.heads; ++h) {
      heads[h].page = p->page;
      heads[h].row_pages.resize(steps.q.len);
    }
    for (int64_t i = 0; i < steps.q.len; ++i) {
      index.Append(steps.k.Rows(0, prompt + i + 1));
      auto pages = index.Select(steps.q, i, p->token_budget / p->page, p->gqa_shared);
      for (int64_t h = 0; h < steps.q.heads; ++h) heads[h].row_pages[i] = std::move(pages[h]);
      est_flops += 4.0 * steps.q.heads * steps.q.dim * ((prompt + i) / p->page);
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("method ", name,
                     " is a prefill method; decode uses dense, streaming, snapkv, "
                     "ada_snapkv, quest or oracle_topk"));
  }
  return SelectionResult{
      std::make_shared<internal::PatternSelection>(std::move(heads), steps.q_offset), est_flops};
}

}  // namespace sf::kernels
