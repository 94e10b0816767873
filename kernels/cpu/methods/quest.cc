// quest on the CPU: per KV head and page the element-wise min and max of the keys; each
// decode step keeps its own page plus the `token_budget / page` earlier pages of best
// upper bound on q.k (Quest, Tang et al. 2024, as the study runs it; docs/methods.md).
// Its prefill is dense.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cpu/cpu_method.h"
#include "kernels/cpu/methods/method_list.h"
#include "kernels/cpu/selection_internal.h"

namespace sf::kernels {
namespace {

class Quest : public CpuMethod {
 public:
  Quest(const MethodInfo& info, int64_t page, bool gqa_shared, int64_t token_budget)
      : CpuMethod(info), page_(page), gqa_shared_(gqa_shared), token_budget_(token_budget) {}

  absl::StatusOr<SelectionResult> SelectDecode(const AttentionInput& steps,
                                               const TensorView&) const override {
    const int64_t prompt = steps.q_offset;
    const int64_t max_budget = (steps.k.len + page_ - 1) / page_ * page_;
    if (token_budget_ > max_budget) {
      return absl::InvalidArgumentError(absl::StrCat(
          "parameter 'token_budget' of method quest is ", token_budget_,
          ", larger than the sequence (", steps.k.len, " tokens, ", max_budget / page_, " pages)"));
    }
    std::vector<internal::HeadPattern> heads(steps.q.heads);
    QuestPageIndex index(steps.k.Rows(0, prompt), page_);
    for (int64_t h = 0; h < steps.q.heads; ++h) {
      heads[h].page = page_;
      heads[h].row_pages.resize(steps.q.len);
    }
    double est_flops = 0;
    for (int64_t i = 0; i < steps.q.len; ++i) {
      index.Append(steps.k.Rows(0, prompt + i + 1));
      auto pages = index.Select(steps.q, i, token_budget_ / page_, gqa_shared_);
      for (int64_t h = 0; h < steps.q.heads; ++h) heads[h].row_pages[i] = std::move(pages[h]);
      est_flops += 4.0 * steps.q.heads * steps.q.dim * ((prompt + i) / page_);
    }
    return internal::PatternResult(std::move(heads), steps.q_offset, est_flops);
  }

  DecodeRun decode_run() const override { return DecodeRun::kPerStep; }

 private:
  int64_t page_;
  bool gqa_shared_;
  int64_t token_budget_;
};

absl::StatusOr<std::shared_ptr<const CpuMethod>> Bind(const ParamReader& r) {
  SF_ASSIGN_OR_RETURN(const int64_t page, r.Int("page"));
  SF_ASSIGN_OR_RETURN(const bool gqa_shared, r.Bool("gqa_shared"));
  SF_ASSIGN_OR_RETURN(const int64_t token_budget, r.Int("token_budget"));
  return std::make_shared<Quest>(r.method(), page, gqa_shared, token_budget);
}

}  // namespace

CpuMethodEntry QuestCpu() { return {.name = "quest", .bind = Bind}; }

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
    out[h] = internal::TopKIndices(s, {}, budget_pages);
    out[h].push_back(current);
  }
  return out;
}

}  // namespace sf::kernels
