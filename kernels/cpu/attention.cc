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

// The reference runs in seconds only when these loops use the widest vectors present.
// Each kernel is compiled twice, for AVX2 and for the baseline, and a flag read once at
// start picks one. Not target_clones: its ifunc resolver runs while the program is being
// relocated, before a sanitizer's runtime exists, and crashes ThreadSanitizer builds.
#define SF_ALWAYS_INLINE __attribute__((always_inline)) inline
#if defined(__x86_64__) && defined(__GNUC__)
const bool kHasAvx2 = (__builtin_cpu_init(), __builtin_cpu_supports("avx2"));
#define SF_VECTOR_KERNEL(ret, name, params, args)                                   \
  __attribute__((target("avx2"))) ret name##Avx2 params { return name##Body args; } \
  ret name##Base params { return name##Body args; }                                 \
  ret name params { return kHasAvx2 ? name##Avx2 args : name##Base args; }
#else
#define SF_VECTOR_KERNEL(ret, name, params, args) \
  ret name params { return name##Body args; }
#endif

template <typename A>
SF_ALWAYS_INLINE double DotImpl(const A* a, const float* b, int64_t d) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t x = 0;
  for (; x + 8 <= d; x += 8) {
    for (int u = 0; u < 8; ++u) acc[u] += static_cast<double>(a[x + u]) * b[x + u];
  }
  for (int u = 0; x < d; ++x, ++u) acc[u] += static_cast<double>(a[x]) * b[x];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

SF_ALWAYS_INLINE double DotBody(const float* a, const float* b, int64_t d) {
  return DotImpl(a, b, d);
}
SF_ALWAYS_INLINE double DotBody(const double* a, const float* b, int64_t d) {
  return DotImpl(a, b, d);
}
SF_ALWAYS_INLINE void AxpyBody(double p, const float* v, double* acc, int64_t d) {
  for (int64_t x = 0; x < d; ++x) acc[x] += p * v[x];
}
// Four consecutive rows (stride floats apart) at once; each result is bit-identical to
// Dot / four Axpy calls in sequence, but the four chains run in parallel.
SF_ALWAYS_INLINE void Dot4Body(const double* a, const float* b, int64_t stride, int64_t d,
                               double* out) {
  for (int k = 0; k < 4; ++k) out[k] = DotImpl(a, b + k * stride, d);
}
SF_ALWAYS_INLINE void Axpy4Body(const double* p, const float* v, int64_t stride, double* acc,
                                int64_t d) {
  const float *v0 = v, *v1 = v + stride, *v2 = v + 2 * stride, *v3 = v + 3 * stride;
  for (int64_t x = 0; x < d; ++x) {
    acc[x] = (((acc[x] + p[0] * v0[x]) + p[1] * v1[x]) + p[2] * v2[x]) + p[3] * v3[x];
  }
}

SF_VECTOR_KERNEL(double, Dot, (const float* a, const float* b, int64_t d), (a, b, d))
SF_VECTOR_KERNEL(double, Dot, (const double* a, const float* b, int64_t d), (a, b, d))
SF_VECTOR_KERNEL(void, Axpy, (double p, const float* v, double* acc, int64_t d), (p, v, acc, d))
SF_VECTOR_KERNEL(void, Dot4,
                 (const double* a, const float* b, int64_t stride, int64_t d, double* out),
                 (a, b, stride, d, out))
SF_VECTOR_KERNEL(void, Axpy4,
                 (const double* p, const float* v, int64_t stride, double* acc, int64_t d),
                 (p, v, stride, acc, d))

void PatternSelection::Row(int64_t h, int64_t i, std::vector<KeyRange>* out) const {
  const HeadPattern& p = heads_[h];
  const int64_t pos = q_offset_ + i;
  const int64_t end = pos + 1;
  out->clear();
  // Each component appends its ranges in ascending order as one segment; the segments
  // are then merged (cheaper than sorting thousands of columns per row).
  size_t segments[8];
  int n_segments = 0;
  auto add = [&](int64_t b, int64_t e) {
    b = std::max<int64_t>(b, 0);
    e = std::min(e, end);
    if (b < e) out->push_back({b, e});
  };
  auto close = [&] { segments[n_segments++] = out->size(); };
  if (p.sink > 0) add(0, p.sink);
  if (p.window > 0) add(p.window >= kAll ? 0 : pos - p.window + 1, end);
  if (p.fresh_from >= 0) add(p.fresh_from, end);
  close();
  for (int64_t c : p.columns) {
    if (c > pos) break;
    add(c, c + 1);
  }
  close();
  // Offsets ascending are keys descending: walk them backwards.
  for (auto it = p.offsets.rbegin(); it != p.offsets.rend(); ++it) {
    if (*it <= pos) add(pos - *it, pos - *it + 1);
  }
  close();
  if (p.block > 0) {
    const int64_t qb = pos / p.block;
    if (qb < static_cast<int64_t>(p.blocks.size())) {
      for (int64_t kb : p.blocks[qb]) add(kb * p.block, (kb + 1) * p.block);
    }
  }
  close();
  for (int64_t j : p.kept) {
    if (j > pos) break;
    add(j, j + 1);
  }
  close();
  if (p.page > 0 && i < static_cast<int64_t>(p.row_pages.size())) {
    for (int64_t pg : p.row_pages[i]) add(pg * p.page, (pg + 1) * p.page);
  }
  close();
  auto by_begin = [](const KeyRange& a, const KeyRange& b) { return a.begin < b.begin; };
  // The first segment (sink, window, fresh) holds up to three unordered ranges.
  std::sort(out->begin(), out->begin() + segments[0], by_begin);
  for (int s = 1; s < n_segments; ++s) {
    std::inplace_merge(out->begin(), out->begin() + segments[s - 1], out->begin() + segments[s],
                       by_begin);
  }
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

double PatternSelection::Pairs(int64_t h, int64_t rows) const {
  const HeadPattern& p = heads_[h];
  const int64_t first = q_offset_, end = q_offset_ + rows;  // positions [first, end)
  const bool no_spans = p.sink == 0 && p.window == 0 && p.fresh_from < 0 && p.kept.empty() &&
                        (p.page == 0 || p.row_pages.empty());
  if (no_spans && p.block == 0) {
    // Lines: each column c covers the rows at positions >= c, each diagonal o the rows at
    // positions >= o; a column meets a diagonal once, at position c + o.
    auto covered = [&](int64_t start) {
      return static_cast<double>(std::max<int64_t>(0, end - std::max(start, first)));
    };
    double pairs = 0;
    for (int64_t c : p.columns) pairs += covered(c);
    for (int64_t o : p.offsets) pairs += covered(o);
    // Pairs (c, o) with c + o < x, both lists ascending.
    auto below = [&](int64_t x) {
      double n = 0;
      int64_t k = static_cast<int64_t>(p.offsets.size());
      for (int64_t c : p.columns) {
        while (k > 0 && c + p.offsets[k - 1] >= x) --k;
        n += static_cast<double>(k);
      }
      return n;
    };
    return pairs - (below(end) - below(first));
  }
  if (no_spans && p.columns.empty() && p.offsets.empty()) {
    // Blocks: earlier key blocks are whole; the diagonal block is causal.
    double pairs = 0;
    for (int64_t qb = first / p.block; qb * p.block < end; ++qb) {
      if (qb >= static_cast<int64_t>(p.blocks.size())) break;
      const int64_t rb = std::max(first, qb * p.block), re = std::min(end, (qb + 1) * p.block);
      for (int64_t kb : p.blocks[qb]) {
        if (kb < qb) {
          pairs += static_cast<double>(p.block) * (re - rb);
        } else if (kb == qb) {
          // sum over pos in [rb, re) of pos - qb * block + 1
          const double a = static_cast<double>(rb - qb * p.block + 1);
          const double b = static_cast<double>(re - qb * p.block);
          pairs += (a + b) * (b - a + 1) / 2.0;
        }
      }
    }
    return pairs;
  }
  std::vector<KeyRange> ranges;
  double pairs = 0;
  for (int64_t i = 0; i < rows; ++i) {
    Row(h, i, &ranges);
    for (const KeyRange& r : ranges) pairs += static_cast<double>(r.end - r.begin);
  }
  return pairs;
}

void OracleSelection::Row(int64_t h, int64_t i, std::vector<KeyRange>* out) const {
  const int64_t pos = input_.q_offset + i;
  out->clear();
  if (top_k_ >= pos + 1) {
    out->push_back({0, pos + 1});
    return;
  }
  const int64_t kvh = h / input_.group(), d = input_.q.dim;
  // Per-thread buffers: rows are asked for millions of times.
  thread_local std::vector<double> qd, s, scratch;
  const float* q = input_.q.Row(h, i);
  qd.assign(q, q + d);
  s.resize(pos + 1);
  int64_t j = 0;
  for (; j + 4 <= pos + 1; j += 4)
    Dot4(qd.data(), input_.k.Row(kvh, j), input_.k.row_stride, d, &s[j]);
  for (; j <= pos; ++j) s[j] = Dot(qd.data(), input_.k.Row(kvh, j), d);
  // The k-th largest score; everything above it, then ties by lower position.
  scratch.assign(s.begin(), s.end());
  std::nth_element(scratch.begin(), scratch.begin() + (top_k_ - 1), scratch.end(),
                   std::greater<double>());
  const double kth = scratch[top_k_ - 1];
  int64_t ties = top_k_;
  for (double x : s) ties -= x > kth ? 1 : 0;
  for (int64_t key = 0; key <= pos; ++key) {
    if (!(s[key] > kth || (s[key] == kth && ties-- > 0))) continue;
    if (!out->empty() && out->back().end == key) {
      out->back().end = key + 1;
    } else {
      out->push_back({key, key + 1});
    }
  }
}

std::vector<int64_t> TopKIndices(const std::vector<double>& scores, const std::vector<char>& forced,
                                 int64_t k) {
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
    if (cum <= mass)
      ++count;
    else
      break;
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

using internal::Axpy;
using internal::Axpy4;
using internal::Dot;
using internal::Dot4;

absl::Status ValidateInput(const AttentionInput& in) {
  if (in.q.data == nullptr || in.k.data == nullptr || in.v.data == nullptr) {
    return absl::InvalidArgumentError("attention input: q, k and v must all be given");
  }
  if (in.q.heads < 1 || in.k.heads < 1 || in.q.heads % in.k.heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("attention input: query heads (", in.q.heads,
                                                   ") must be a multiple of KV heads (", in.k.heads,
                                                   ")"));
  }
  if (in.v.heads != in.k.heads || in.v.len != in.k.len) {
    return absl::InvalidArgumentError("attention input: v must have the shape of k");
  }
  if (in.q.dim < 1 || in.q.dim != in.k.dim || in.k.dim != in.v.dim) {
    return absl::InvalidArgumentError(absl::StrCat("attention input: head dims differ (q ",
                                                   in.q.dim, ", k ", in.k.dim, ", v ", in.v.dim,
                                                   ")"));
  }
  if (in.q.len < 1 || in.q_offset < 0 || in.q_offset + in.q.len > in.k.len) {
    return absl::InvalidArgumentError(
        absl::StrCat("attention input: queries at positions [", in.q_offset, ", ",
                     in.q_offset + in.q.len, ") need keys up to there, but k has ", in.k.len));
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
  const auto* pattern = dynamic_cast<const internal::PatternSelection*>(&selection);
  ParallelFor(in.q.heads, 0, [&](int64_t h) {
    if (pattern != nullptr) {
      pairs[h] = pattern->Pairs(h, in.q.len);
      return;
    }
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

SelectionStructure DescribeSelection(const Selection& selection) {
  SelectionStructure out;
  const auto* pattern = dynamic_cast<const internal::PatternSelection*>(&selection);
  if (pattern == nullptr) return out;
  for (const internal::HeadPattern& h : pattern->heads()) {
    out.columns.push_back(h.columns);
    out.offsets.push_back(h.offsets);
    out.blocks.push_back(h.blocks);
    out.block = std::max(out.block, h.block);
    out.pages.push_back(h.row_pages.empty() ? std::vector<int64_t>{} : h.row_pages.front());
    out.page = std::max(out.page, h.page);
    out.kept.push_back(h.kept);
  }
  return out;
}

AttentionResult AttendSelected(const AttentionInput& in,
                               std::shared_ptr<const Selection> selection) {
  const int64_t hq = in.q.heads, lq = in.q.len, d = in.q.dim;
  AttentionResult result;
  result.output = Tensor(hq, lq, d);
  result.row_lse.assign(hq * lq, 0.0);
  // Tiles of query rows walk the keys in chunks that stay in cache, with an online
  // softmax per row (in double), so K and V stream from memory once per tile.
  constexpr int64_t kTile = 16, kChunk = 512;
  const int64_t ntiles = (lq + kTile - 1) / kTile;
  std::vector<double> pairs(hq * ntiles, 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  ParallelFor(hq * ntiles, 0, [&](int64_t unit) {
    const int64_t h = unit / ntiles, t0 = (unit % ntiles) * kTile;
    const int64_t rows = std::min(lq, t0 + kTile) - t0;
    const int64_t kvh = h / in.group();
    std::vector<std::vector<KeyRange>> ranges(rows);
    std::vector<size_t> cursor(rows, 0);
    std::vector<double> qd(rows * d), acc(rows * d, 0.0), m(rows, -INFINITY), z(rows, 0.0);
    std::vector<double> s(kChunk);
    int64_t key_end = 0;
    for (int64_t r = 0; r < rows; ++r) {
      selection->Row(h, t0 + r, &ranges[r]);
      const float* q = in.q.Row(h, t0 + r);
      for (int64_t x = 0; x < d; ++x) qd[r * d + x] = q[x] * scale;
      if (!ranges[r].empty()) key_end = std::max(key_end, ranges[r].back().end);
    }
    for (int64_t c0 = 0; c0 < key_end; c0 += kChunk) {
      const int64_t c1 = std::min(c0 + kChunk, key_end);
      for (int64_t r = 0; r < rows; ++r) {
        const std::vector<KeyRange>& rg = ranges[r];
        const size_t first = cursor[r];
        int64_t n = 0;
        double mc = -INFINITY;
        for (size_t x = first; x < rg.size() && rg[x].begin < c1; ++x) {
          const int64_t b = std::max(rg[x].begin, c0), e = std::min(rg[x].end, c1);
          int64_t j = b;
          for (; j + 4 <= e; j += 4, n += 4) {
            Dot4(&qd[r * d], in.k.Row(kvh, j), in.k.row_stride, d, &s[n]);
          }
          for (; j < e; ++j, ++n) s[n] = Dot(&qd[r * d], in.k.Row(kvh, j), d);
        }
        for (int64_t x = 0; x < n; ++x) mc = std::max(mc, s[x]);
        while (cursor[r] < rg.size() && rg[cursor[r]].end <= c1) ++cursor[r];
        if (n == 0) continue;
        const double m_new = std::max(m[r], mc);
        const double rescale = std::exp(m[r] - m_new);
        if (rescale != 1.0) {
          z[r] *= rescale;
          for (int64_t x = 0; x < d; ++x) acc[r * d + x] *= rescale;
        }
        m[r] = m_new;
        n = 0;
        for (size_t x = first; x < rg.size() && rg[x].begin < c1; ++x) {
          const int64_t b = std::max(rg[x].begin, c0), e = std::min(rg[x].end, c1);
          for (int64_t j = b; j < e; ++j, ++n) s[n] = std::exp(s[n] - m_new);
          const int64_t n0 = n - (e - b);
          int64_t j = b;
          for (; j + 4 <= e; j += 4) {
            const double* p = &s[n0 + (j - b)];
            z[r] += p[0];
            z[r] += p[1];
            z[r] += p[2];
            z[r] += p[3];
            Axpy4(p, in.v.Row(kvh, j), in.v.row_stride, &acc[r * d], d);
          }
          for (; j < e; ++j) {
            z[r] += s[n0 + (j - b)];
            Axpy(s[n0 + (j - b)], in.v.Row(kvh, j), &acc[r * d], d);
          }
        }
        pairs[unit] += static_cast<double>(n);
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      float* o = result.output.Row(h, t0 + r);
      const bool any = z[r] > 0;
      for (int64_t x = 0; x < d; ++x) o[x] = any ? static_cast<float>(acc[r * d + x] / z[r]) : 0.0f;
      result.row_lse[h * lq + t0 + r] = any ? m[r] + std::log(z[r]) : -INFINITY;
    }
  });
  for (double p : pairs) result.pairs_computed += p;
  // Causal pairs of rows at positions q_offset .. q_offset + lq - 1, per head.
  const double first = static_cast<double>(in.q_offset) + 1;
  const double last = static_cast<double>(in.q_offset + lq);
  result.pairs_causal = hq * (first + last) * lq / 2.0;
  result.selection = std::move(selection);
  return result;
}

}  // namespace sf::kernels
