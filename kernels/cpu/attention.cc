#include "kernels/cpu/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/cpu/selection_internal.h"

namespace sf::kernels {
namespace internal {

void PatternSelection::Row(int64_t h, int64_t i, std::vector<KeyRange>* out) const {
  const HeadPattern& p = heads_[h];
  const int64_t pos = q_offset_ + i;
  const int64_t end = pos + 1;
  out->clear();
  auto add = [&](int64_t b, int64_t e) {
    b = std::max<int64_t>(b, 0);
    e = std::min(e, end);
    if (b < e) out->push_back({b, e});
  };
  if (p.sink > 0) add(0, p.sink);
  if (p.window > 0) add(p.window >= kAll ? 0 : pos - p.window + 1, end);
  for (int64_t c : p.columns) {
    if (c > pos) break;
    add(c, c + 1);
  }
  for (int64_t o : p.offsets) {
    if (o > pos) break;
    add(pos - o, pos - o + 1);
  }
  if (p.block > 0) {
    const int64_t qb = pos / p.block;
    if (qb < static_cast<int64_t>(p.blocks.size())) {
      for (int64_t kb : p.blocks[qb]) add(kb * p.block, (kb + 1) * p.block);
    }
  }
  for (int64_t j : p.kept) {
    if (j > pos) break;
    add(j, j + 1);
  }
  if (p.fresh_from >= 0) add(p.fresh_from, end);
  if (p.page > 0 && i < static_cast<int64_t>(p.row_pages.size())) {
    for (int64_t pg : p.row_pages[i]) add(pg * p.page, (pg + 1) * p.page);
  }
  std::sort(out->begin(), out->end(),
            [](const KeyRange& a, const KeyRange& b) { return a.begin < b.begin; });
  size_t w = 0;
  for (size_t r = 0; r < out->size(); ++r) {
    if (w > 0 && (*out)[r].begin <= (*out)[w - 1].end) {
      (*out)[w - 1].end = std::max((*out)[w - 1].end, (*out)[r].end);
    } else {
      (*out)[w++] = (*out)[r];
    }
  }
  out->resize(w);
}

void OracleSelection::Row(int64_t h, int64_t i, std::vector<KeyRange>* out) const {
  const int64_t pos = input_.q_offset + i;
  out->clear();
  if (top_k_ >= pos + 1) {
    out->push_back({0, pos + 1});
    return;
  }
  const int64_t kvh = h / input_.group();
  const float* q = input_.q.Row(h, i);
  std::vector<double> s(pos + 1);
  for (int64_t j = 0; j <= pos; ++j) s[j] = Dot(q, input_.k.Row(kvh, j), input_.q.dim);
  std::vector<int64_t> idx = TopKIndices(s, {}, top_k_);
  for (int64_t j : idx) {
    if (!out->empty() && out->back().end == j) {
      out->back().end = j + 1;
    } else {
      out->push_back({j, j + 1});
    }
  }
}

std::vector<int64_t> TopKIndices(const std::vector<double>& scores,
                                 const std::vector<char>& forced, int64_t k) {
  const int64_t n = static_cast<int64_t>(scores.size());
  k = std::clamp<int64_t>(k, 0, n);
  std::vector<int64_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  auto better = [&](int64_t a, int64_t b) {
    const bool fa = !forced.empty() && forced[a], fb = !forced.empty() && forced[b];
    if (fa != fb) return fa;
    if (scores[a] != scores[b]) return scores[a] > scores[b];
    return a < b;
  };
  std::nth_element(idx.begin(), idx.begin() + k, idx.end(), better);
  idx.resize(k);
  std::sort(idx.begin(), idx.end());
  return idx;
}

int64_t CoverCount(std::vector<double> x, double mass) {
  std::sort(x.begin(), x.end(), std::greater<double>());
  double cum = 0;
  int64_t count = 0;
  for (double v : x) {
    cum += v;
    if (cum <= mass) ++count;
    else break;
  }
  return std::min<int64_t>(count + 1, static_cast<int64_t>(x.size()));
}

void CausalSoftmaxRow(const float* q_row, const TensorView& k, int64_t kv_head, int64_t pos,
                      std::vector<double>* p) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(k.dim));
  p->resize(pos + 1);
  double m = -INFINITY;
  for (int64_t j = 0; j <= pos; ++j) {
    (*p)[j] = Dot(q_row, k.Row(kv_head, j), k.dim) * scale;
    m = std::max(m, (*p)[j]);
  }
  double z = 0;
  for (int64_t j = 0; j <= pos; ++j) {
    (*p)[j] = std::exp((*p)[j] - m);
    z += (*p)[j];
  }
  for (int64_t j = 0; j <= pos; ++j) (*p)[j] /= z;
}

}  // namespace internal

absl::Status ValidateInput(const AttentionInput& in) {
  if (in.q.data == nullptr || in.k.data == nullptr || in.v.data == nullptr) {
    return absl::InvalidArgumentError("attention input: q, k and v must all be given");
  }
  if (in.q.heads < 1 || in.k.heads < 1 || in.q.heads % in.k.heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "attention input: query heads (", in.q.heads, ") must be a multiple of KV heads (",
        in.k.heads, ")"));
  }
  if (in.v.heads != in.k.heads || in.v.len != in.k.len) {
    return absl::InvalidArgumentError("attention input: v must have the shape of k");
  }
  if (in.q.dim < 1 || in.q.dim != in.k.dim || in.k.dim != in.v.dim) {
    return absl::InvalidArgumentError(absl::StrCat("attention input: head dims differ (q ",
                                                   in.q.dim, ", k ", in.k.dim, ", v ",
                                                   in.v.dim, ")"));
  }
  if (in.q.len < 1 || in.q_offset < 0 || in.q_offset + in.q.len > in.k.len) {
    return absl::InvalidArgumentError(absl::StrCat(
        "attention input: queries at positions [", in.q_offset, ", ", in.q_offset + in.q.len,
        ") need keys up to there, but k has ", in.k.len));
  }
  return absl::OkStatus();
}

void ParallelFor(int64_t n, int threads, const std::function<void(int64_t)>& fn) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = static_cast<int>(std::min<int64_t>(threads, n));
  if (threads <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int64_t i = next++; i < n; i = next++) fn(i);
    });
  }
  for (std::thread& t : pool) t.join();
}

double SelectedPairs(const Selection& selection, const AttentionInput& in) {
  std::vector<double> pairs(in.q.heads, 0.0);
  ParallelFor(in.q.heads, 0, [&](int64_t h) {
    std::vector<KeyRange> ranges;
    for (int64_t i = 0; i < in.q.len; ++i) {
      selection.Row(h, i, &ranges);
      for (const KeyRange& r : ranges) pairs[h] += static_cast<double>(r.end - r.begin);
    }
  });
  double total = 0;
  for (double p : pairs) total += p;
  return total;
}

AttentionResult AttendSelected(const AttentionInput& in,
                               std::shared_ptr<const Selection> selection) {
  const int64_t hq = in.q.heads, lq = in.q.len, d = in.q.dim;
  AttentionResult r;
  r.output = Tensor(hq, lq, d);
  r.row_lse.assign(hq * lq, 0.0);
  std::vector<double> pairs(hq, 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  ParallelFor(hq, 0, [&](int64_t h) {
    const int64_t kvh = h / in.group();
    std::vector<KeyRange> ranges;
    std::vector<double> s, acc(d), qd(d);
    for (int64_t i = 0; i < lq; ++i) {
      selection->Row(h, i, &ranges);
      const float* q = in.q.Row(h, i);
      for (int64_t x = 0; x < d; ++x) qd[x] = q[x] * scale;
      s.clear();
      double m = -INFINITY;
      for (const KeyRange& kr : ranges) {
        for (int64_t j = kr.begin; j < kr.end; ++j) {
          const float* k = in.k.Row(kvh, j);
          double dot = 0;
          for (int64_t x = 0; x < d; ++x) dot += qd[x] * k[x];
          s.push_back(dot);
          m = std::max(m, dot);
        }
      }
      std::fill(acc.begin(), acc.end(), 0.0);
      double z = 0;
      size_t n = 0;
      for (const KeyRange& kr : ranges) {
        for (int64_t j = kr.begin; j < kr.end; ++j, ++n) {
          const double p = std::exp(s[n] - m);
          z += p;
          const float* v = in.v.Row(kvh, j);
          for (int64_t x = 0; x < d; ++x) acc[x] += p * v[x];
        }
      }
      float* o = r.output.Row(h, i);
      for (int64_t x = 0; x < d; ++x) o[x] = n > 0 ? static_cast<float>(acc[x] / z) : 0.0f;
      r.row_lse[h * lq + i] = n > 0 ? m + std::log(z) : -INFINITY;
      pairs[h] += static_cast<double>(n);
    }
  });
  for (double p : pairs) r.pairs_computed += p;
  // Causal pairs of rows at positions q_offset .. q_offset + lq - 1, per head.
  const double first = static_cast<double>(in.q_offset) + 1;
  const double last = static_cast<double>(in.q_offset + lq);
  r.pairs_causal = hq * (first + last) * lq / 2.0;
  r.selection = std::move(selection);
  return r;
}

}  // namespace sf::kernels
