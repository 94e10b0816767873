// Building blocks the methods' selections share: pooled blocks, the last queries'
// column and diagonal mass, forced top-k (selection_internal.h).
#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/cpu/selection_internal.h"

namespace sf::kernels::internal {

absl::Status TooLarge(absl::string_view method, absl::string_view param, int64_t value,
                      int64_t limit, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("parameter '", param, "' of method ", method,
                                                 " is ", value, ", larger than ", what, " (", limit,
                                                 ")"));
}

std::vector<double> MeanRows(const TensorView& t, int64_t h, int64_t begin, int64_t end) {
  std::vector<double> m(t.dim, 0.0);
  for (int64_t i = begin; i < end; ++i) {
    const float* r = t.Row(h, i);
    for (int64_t x = 0; x < t.dim; ++x) m[x] += r[x];
  }
  for (double& x : m) x /= static_cast<double>(end - begin);
  return m;
}

double DotD(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t x = 0; x < a.size(); ++x) s += a[x] * b[x];
  return s;
}

std::vector<std::vector<std::vector<double>>> PoolKeys(const TensorView& k, int64_t block) {
  const int64_t nb = (k.len + block - 1) / block;
  std::vector<std::vector<std::vector<double>>> pooled(k.heads);
  for (int64_t h = 0; h < k.heads; ++h) {
    for (int64_t b = 0; b < nb; ++b) {
      pooled[h].push_back(MeanRows(k, h, b * block, std::min(k.len, (b + 1) * block)));
    }
  }
  return pooled;
}

std::pair<int64_t, int64_t> QueryRowsOfBlock(const AttentionInput& in, int64_t block, int64_t qb) {
  const int64_t b = std::max<int64_t>(qb * block - in.q_offset, 0);
  const int64_t e = std::min<int64_t>((qb + 1) * block - in.q_offset, in.q.len);
  return {b, e};
}

void ColumnAndDiagonalMass(const AttentionInput& in, int64_t h, int64_t last_q,
                           std::vector<double>* columns, std::vector<double>* diagonals) {
  const int64_t lk = in.k.len;
  columns->assign(lk, 0.0);
  diagonals->assign(lk, 0.0);
  std::vector<double> p;
  for (int64_t i = in.q.len - last_q; i < in.q.len; ++i) {
    const int64_t pos = in.q_offset + i;
    CausalSoftmaxRow(in.q.Row(h, i), in.k, h / in.group(), pos, &p);
    for (int64_t j = 0; j <= pos; ++j) {
      (*columns)[j] += p[j];
      (*diagonals)[pos - j] += p[j];
    }
  }
}

std::vector<int64_t> ForcedTopK(const std::vector<double>& score, int64_t forced_prefix,
                                int64_t k) {
  std::vector<char> forced(score.size(), 0);
  for (int64_t x = 0; x < std::min<int64_t>(forced_prefix, score.size()); ++x) forced[x] = 1;
  return TopKIndices(score, forced, k);
}

LineMass ComputeLineMass(const AttentionInput& in, int64_t last_q) {
  LineMass m;
  m.last_q = last_q;
  m.columns.resize(in.q.heads);
  m.diagonals.resize(in.q.heads);
  ParallelFor(in.q.heads, 0, [&](int64_t h) {
    ColumnAndDiagonalMass(in, h, last_q, &m.columns[h], &m.diagonals[h]);
  });
  return m;
}

std::vector<LineMass> ComputeLineMasses(const AttentionInput& in,
                                        const std::vector<int64_t>& last_qs) {
  std::vector<LineMass> out(last_qs.size());
  int64_t most = 0;
  for (size_t x = 0; x < last_qs.size(); ++x) {
    out[x].last_q = last_qs[x];
    out[x].columns.assign(in.q.heads, std::vector<double>(in.k.len, 0.0));
    out[x].diagonals.assign(in.q.heads, std::vector<double>(in.k.len, 0.0));
    most = std::max(most, last_qs[x]);
  }
  ParallelFor(in.q.heads, 0, [&](int64_t h) {
    std::vector<double> p;
    // Rows in the order ColumnAndDiagonalMass adds them, so every sum is bit-identical.
    for (int64_t i = in.q.len - most; i < in.q.len; ++i) {
      const int64_t pos = in.q_offset + i;
      CausalSoftmaxRow(in.q.Row(h, i), in.k, h / in.group(), pos, &p);
      for (LineMass& m : out) {
        if (i < in.q.len - m.last_q) continue;
        std::vector<double>& cols = m.columns[h];
        std::vector<double>& diags = m.diagonals[h];
        for (int64_t j = 0; j <= pos; ++j) {
          cols[j] += p[j];
          diags[pos - j] += p[j];
        }
      }
    }
  });
  return out;
}

}  // namespace sf::kernels::internal
