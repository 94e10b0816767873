// Prefill selection of each method (docs/methods.md gives the algorithms and sources).
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
using internal::CoverCount;
using internal::Dot;
using internal::HeadPattern;
using internal::kAll;
using internal::PatternSelection;
using internal::TopKIndices;

// The study's FlexPrefill keeps the first 4 columns and the last 64 diagonals, fixed.
constexpr int64_t kFlexSinkColumns = 4;
constexpr int64_t kFlexLocalDiagonals = 64;

absl::Status TooLarge(absl::string_view method, absl::string_view param, int64_t value,
                      int64_t limit, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("parameter '", param, "' of method ", method,
                                                 " is ", value, ", larger than ", what, " (", limit,
                                                 ")"));
}

// Mean of rows [begin, end) of head h of t, in double.
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

// Pooled key blocks per KV head: [Hkv][nb] mean vectors.
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

// Query rows of the input that fall into the query block qb (by position).
std::pair<int64_t, int64_t> QueryRowsOfBlock(const AttentionInput& in, int64_t block, int64_t qb) {
  const int64_t b = std::max<int64_t>(qb * block - in.q_offset, 0);
  const int64_t e = std::min<int64_t>((qb + 1) * block - in.q_offset, in.q.len);
  return {b, e};
}

absl::StatusOr<SelectionResult> Dense(const AttentionInput& in) {
  std::vector<HeadPattern> heads(in.q.heads);
  for (HeadPattern& p : heads) p.window = kAll;
  return SelectionResult{
      std::make_shared<internal::PatternSelection>(std::move(heads), in.q_offset), 0.0};
}

absl::StatusOr<SelectionResult> Streaming(const AttentionInput& in, const StreamingParams& p) {
  if (p.window > in.k.len)
    return TooLarge("streaming", "window", p.window, in.k.len, "the sequence");
  if (p.sink > in.k.len) return TooLarge("streaming", "sink", p.sink, in.k.len, "the sequence");
  std::vector<HeadPattern> heads(in.q.heads);
  for (HeadPattern& h : heads) {
    h.sink = p.sink;
    h.window = p.window;
  }
  return SelectionResult{
      std::make_shared<internal::PatternSelection>(std::move(heads), in.q_offset), 0.0};
}

absl::StatusOr<SelectionResult> OracleTopK(const AttentionInput& in, const OracleTopKParams& p) {
  if (p.top_k > in.k.len)
    return TooLarge("oracle_topk", "top_k", p.top_k, in.k.len, "the sequence");
  // Choosing needs every causal q.k: the full score matrix.
  const double causal = in.q.heads * (2.0 * in.q_offset + in.q.len + 1) * in.q.len / 2.0;
  return SelectionResult{std::make_shared<internal::OracleSelection>(in, p.top_k),
                         2.0 * in.q.dim * causal};
}

absl::StatusOr<SelectionResult> BlockSparse(const AttentionInput& in, const BlockSparseParams& p) {
  const int64_t nb = (in.k.len + p.block - 1) / p.block;
  if (p.block_budget > nb) {
    return TooLarge("block_sparse", "block_budget", p.block_budget, nb,
                    absl::StrCat("the sequence's number of blocks of ", p.block));
  }
  const auto pooled_k = PoolKeys(in.k, p.block);
  const int64_t first_qb = in.q_offset / p.block;
  const int64_t last_qb = (in.q_offset + in.q.len - 1) / p.block;
  std::vector<HeadPattern> heads(in.q.heads);
  ParallelFor(in.q.heads, 0, [&](int64_t h) {
    HeadPattern& hp = heads[h];
    hp.block = p.block;
    hp.blocks.resize(last_qb + 1);
    const int64_t kvh = h / in.group();
    for (int64_t qb = first_qb; qb <= last_qb; ++qb) {
      auto [rb, re] = QueryRowsOfBlock(in, p.block, qb);
      const std::vector<double> pq = MeanRows(in.q, h, rb, re);
      std::vector<double> score(qb + 1);
      std::vector<char> forced(qb + 1, 0);
      for (int64_t kb = 0; kb <= qb; ++kb) score[kb] = DotD(pq, pooled_k[kvh][kb]);
      forced[0] = forced[qb] = 1;
      if (qb >= 1) forced[qb - 1] = 1;
      const int64_t n_forced = std::min<int64_t>(qb + 1, qb >= 1 ? (qb >= 2 ? 3 : 2) : 1);
      hp.blocks[qb] = TopKIndices(score, forced, std::max(p.block_budget, n_forced));
    }
  });
  SelectionResult r{std::make_shared<internal::PatternSelection>(std::move(heads), in.q_offset),
                    0.0};
  const double nqb = static_cast<double>(last_qb - first_qb + 1);
  r.estimation_flops =
      in.q.heads * (in.q.len * in.q.dim + nqb * (first_qb + last_qb + 2) / 2.0 * 2.0 * in.q.dim) +
      in.k.heads * static_cast<double>(in.k.len) * in.k.dim;
  return r;
}

// Column mass and diagonal mass of the last `last_q` query rows of head h (causal
// softmax rows, summed), over keys [0, Lk) and offsets [0, Lk).
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

absl::Status CheckVerticalSlash(const AttentionInput& in, const VerticalSlashParams& p) {
  const int64_t lk = in.k.len;
  if (p.verticals > lk)
    return TooLarge("vertical_slash", "verticals", p.verticals, lk, "the sequence");
  if (p.slashes > lk) return TooLarge("vertical_slash", "slashes", p.slashes, lk, "the sequence");
  if (p.verticals < std::min(p.sink, lk)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameter 'verticals' of method vertical_slash (", p.verticals,
        ") must be at least 'sink' (", p.sink, "): the sink columns count in the budget"));
  }
  if (p.slashes < std::min(p.local, lk)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameter 'slashes' of method vertical_slash (", p.slashes, ") must be at least 'local' (",
        p.local, "): the local diagonals count in the budget"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SelectionResult> VerticalSlash(const AttentionInput& in,
                                              const VerticalSlashParams& p) {
  SF_RETURN_IF_ERROR(CheckVerticalSlash(in, p));
  return internal::VerticalSlashFrom(in, p,
                                     internal::ComputeLineMass(in, std::min(p.last_q, in.q.len)));
}

// FlexPrefill's query-aware pattern for head h: per query block, the smallest set of
// key blocks reaching mass gamma under the pooled estimate, plus the sink and diagonal
// blocks and at least min_budget tokens.
void QueryAwareBlocks(const AttentionInput& in, const FlexPrefillParams& p,
                      const std::vector<std::vector<double>>& pooled_k, int64_t h,
                      HeadPattern* hp) {
  const int64_t first_qb = in.q_offset / p.block;
  const int64_t last_qb = (in.q_offset + in.q.len - 1) / p.block;
  const double scale = 1.0 / std::sqrt(static_cast<double>(in.q.dim));
  const int64_t min_blocks = (p.min_budget + p.block - 1) / p.block;
  hp->block = p.block;
  hp->blocks.resize(last_qb + 1);
  for (int64_t qb = first_qb; qb <= last_qb; ++qb) {
    auto [rb, re] = QueryRowsOfBlock(in, p.block, qb);
    const std::vector<double> pq = MeanRows(in.q, h, rb, re);
    std::vector<double> prob(qb + 1);
    double m = -INFINITY;
    for (int64_t kb = 0; kb <= qb; ++kb) {
      prob[kb] = DotD(pq, pooled_k[kb]) * scale;
      m = std::max(m, prob[kb]);
    }
    double z = 0;
    for (double& x : prob) z += (x = std::exp(x - m));
    for (double& x : prob) x /= z;
    const int64_t k = p.gamma >= 1.0 ? qb + 1 : std::max(CoverCount(prob, p.gamma), min_blocks);
    std::vector<char> forced(qb + 1, 0);
    forced[0] = forced[qb] = 1;
    hp->blocks[qb] = TopKIndices(prob, forced, std::max<int64_t>(k, qb >= 1 ? 2 : 1));
  }
}

// Jensen-Shannon distance (sqrt of the divergence, natural log) of two distributions.
double JsDistance(const std::vector<double>& a, const std::vector<double>& b) {
  double js = 0;
  for (size_t x = 0; x < a.size(); ++x) {
    const double m = 0.5 * (a[x] + b[x]);
    if (a[x] > 0) js += 0.5 * a[x] * std::log(a[x] / m);
    if (b[x] > 0) js += 0.5 * b[x] * std::log(b[x] / m);
  }
  return std::sqrt(std::max(js, 0.0));
}

// The study's variant from the line mass of its last queries.
void FlexStudyLines(const FlexPrefillParams& p, int64_t lk, int64_t est_q, std::vector<double> cols,
                    std::vector<double> diags, HeadPattern* hp) {
  for (double& x : cols) x /= static_cast<double>(est_q);
  for (double& x : diags) x /= static_cast<double>(est_q);
  // The forced columns and diagonals always fit (the study's min_budget >= 64 ensures
  // it there; here it is explicit).
  const int64_t nv =
      p.gamma >= 1.0 ? lk : std::max({p.min_budget, CoverCount(cols, p.gamma), kFlexSinkColumns});
  const int64_t ns =
      p.gamma >= 1.0 ? lk
                     : std::max({p.min_budget, CoverCount(diags, p.gamma), kFlexLocalDiagonals});
  hp->columns = ForcedTopK(cols, kFlexSinkColumns, std::min(nv, lk));
  hp->offsets = ForcedTopK(diags, kFlexLocalDiagonals, std::min(ns, lk));
}

absl::StatusOr<SelectionResult> FlexPrefill(const AttentionInput& in, const FlexPrefillParams& p) {
  const int64_t lk = in.k.len;
  if (!p.original) {
    return internal::FlexPrefillStudyFrom(
        in, p, internal::ComputeLineMass(in, std::min(p.last_q, in.q.len)));
  }
  const int64_t est_q = std::min(p.original ? p.block : p.last_q, in.q.len);
  const int64_t nb = (lk + p.block - 1) / p.block;
  const auto pooled_k =
      p.original ? PoolKeys(in.k, p.block) : std::vector<std::vector<std::vector<double>>>{};
  std::vector<HeadPattern> heads(in.q.heads);
  std::vector<double> flops(in.q.heads, 0.0);
  ParallelFor(in.q.heads, 0, [&](int64_t h) {
    std::vector<double> cols, diags;
    ColumnAndDiagonalMass(in, h, est_q, &cols, &diags);
    flops[h] = 2.0 * est_q * lk * in.q.dim;
    if (p.original) {
      // Block distribution of the estimating queries: true (sum-pooled attention) vs
      // estimated (softmax of pooled q . pooled k). Close -> query-aware head.
      const int64_t last_block = (in.q_offset + in.q.len - 1) / p.block;
      std::vector<double> truth(last_block + 1, 0.0), est(last_block + 1, 0.0);
      for (int64_t j = 0; j < lk && j / p.block <= last_block; ++j) truth[j / p.block] += cols[j];
      double tz = std::accumulate(truth.begin(), truth.end(), 0.0);
      for (double& x : truth) x /= tz;
      const std::vector<double> pq = MeanRows(in.q, h, in.q.len - est_q, in.q.len);
      const double scale = 1.0 / std::sqrt(static_cast<double>(in.q.dim));
      double m = -INFINITY;
      for (int64_t kb = 0; kb <= last_block; ++kb) {
        est[kb] = DotD(pq, pooled_k[h / in.group()][kb]) * scale;
        m = std::max(m, est[kb]);
      }
      double z = 0;
      for (double& x : est) z += (x = std::exp(x - m));
      for (double& x : est) x /= z;
      if (JsDistance(truth, est) < p.tau) {
        QueryAwareBlocks(in, p, pooled_k[h / in.group()], h, &heads[h]);
        flops[h] += 2.0 * in.q.dim * nb * (nb + 1) / 2.0;
        return;
      }
    }
    FlexStudyLines(p, lk, est_q, std::move(cols), std::move(diags), &heads[h]);
  });
  SelectionResult r{std::make_shared<internal::PatternSelection>(std::move(heads), in.q_offset),
                    0.0};
  r.estimation_flops = std::accumulate(flops.begin(), flops.end(), 0.0);
  return r;
}

absl::Status CheckXAttention(const XAttentionParams& p) {
  if (p.stride > p.block || p.block % p.stride != 0) {
    return absl::InvalidArgumentError(absl::StrCat("parameter 'stride' of method xattention (",
                                                   p.stride, ") must divide 'block' (", p.block,
                                                   ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SelectionResult> XAttention(const AttentionInput& in, const XAttentionParams& p) {
  SF_RETURN_IF_ERROR(CheckXAttention(p));
  return internal::XAttentionFrom(in, p, internal::ComputeXAttentionMass(in, p.block, p.stride));
}

}  // namespace

namespace internal {

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

absl::StatusOr<SelectionResult> VerticalSlashFrom(const AttentionInput& in,
                                                  const VerticalSlashParams& p,
                                                  const LineMass& mass) {
  SF_RETURN_IF_ERROR(CheckVerticalSlash(in, p));
  std::vector<HeadPattern> heads(in.q.heads);
  ParallelFor(in.q.heads, 0, [&](int64_t h) {
    heads[h].columns = ForcedTopK(mass.columns[h], p.sink, p.verticals);
    heads[h].offsets = ForcedTopK(mass.diagonals[h], p.local, p.slashes);
  });
  SelectionResult r{std::make_shared<PatternSelection>(std::move(heads), in.q_offset), 0.0};
  r.estimation_flops = 2.0 * in.q.heads * mass.last_q * static_cast<double>(in.k.len) * in.q.dim;
  return r;
}

absl::StatusOr<SelectionResult> FlexPrefillStudyFrom(const AttentionInput& in,
                                                     const FlexPrefillParams& p,
                                                     const LineMass& mass) {
  const int64_t lk = in.k.len, est_q = mass.last_q;
  std::vector<HeadPattern> heads(in.q.heads);
  ParallelFor(in.q.heads, 0, [&](int64_t h) {
    FlexStudyLines(p, lk, est_q, mass.columns[h], mass.diagonals[h], &heads[h]);
  });
  SelectionResult r{std::make_shared<PatternSelection>(std::move(heads), in.q_offset), 0.0};
  r.estimation_flops = 2.0 * in.q.heads * est_q * static_cast<double>(lk) * in.q.dim;
  return r;
}

BlockMass ComputeXAttentionMass(const AttentionInput& in, int64_t block, int64_t stride) {
  const int64_t s = stride, lk = in.k.len, d = in.q.dim;
  const int64_t per_block = block / s;  // reduced units per block
  const int64_t first_pos = in.q_offset, last_pos = in.q_offset + in.q.len - 1;
  const int64_t first_r = first_pos / s, last_r = last_pos / s;
  const int64_t last_qb = last_pos / block;
  const double scale = 1.0 / (std::sqrt(static_cast<double>(d)) * s);
  BlockMass out;
  out.block = block;
  out.stride = stride;
  out.mass.resize(in.q.heads);
  std::vector<double> flops(in.q.heads, 0.0);
  ParallelFor(in.q.heads, 0, [&](int64_t h) {
    const int64_t kvh = h / in.group();
    std::vector<std::vector<double>>& mass = out.mass[h];
    mass.resize(last_qb + 1);
    std::vector<double> row;
    for (int64_t r = first_r; r <= last_r; ++r) {
      // Antidiagonal sum of the s x s cell (r, c): q at r*s + s-1-t with k at c*s + t.
      row.assign(r + 1, 0.0);
      double m = -INFINITY;
      for (int64_t c = 0; c <= r; ++c) {
        double acc = 0;
        for (int64_t t = 0; t < s; ++t) {
          const int64_t qp = r * s + s - 1 - t, kp = c * s + t;
          if (qp < first_pos || qp > last_pos || kp >= lk) continue;
          acc += Dot(in.q.Row(h, qp - in.q_offset), in.k.Row(kvh, kp), d);
          flops[h] += 2.0 * d;
        }
        row[c] = acc * scale;
        m = std::max(m, row[c]);
      }
      double z = 0;
      for (double& x : row) z += (x = std::exp(x - m));
      const int64_t qb = r / per_block;
      std::vector<double>& mb = mass[qb];
      if (mb.size() < static_cast<size_t>(qb + 1)) mb.resize(qb + 1, 0.0);
      for (int64_t c = 0; c <= r; ++c) mb[std::min(c / per_block, qb)] += row[c] / z;
    }
    for (int64_t qb = 0; qb <= last_qb; ++qb) mass[qb].resize(qb + 1, 0.0);
  });
  out.flops = std::accumulate(flops.begin(), flops.end(), 0.0);
  return out;
}

absl::StatusOr<SelectionResult> XAttentionFrom(const AttentionInput& in, const XAttentionParams& p,
                                               const BlockMass& bm) {
  SF_RETURN_IF_ERROR(CheckXAttention(p));
  const int64_t first_pos = in.q_offset, last_pos = in.q_offset + in.q.len - 1;
  const int64_t last_qb = last_pos / p.block;
  std::vector<HeadPattern> heads(in.q.heads);
  ParallelFor(in.q.heads, 0, [&](int64_t h) {
    HeadPattern& hp = heads[h];
    hp.block = p.block;
    hp.blocks.resize(last_qb + 1);
    for (int64_t qb = first_pos / p.block; qb <= last_qb; ++qb) {
      const std::vector<double>& mb = bm.mass[h][qb];
      if (p.threshold >= 1.0) {
        hp.blocks[qb].resize(qb + 1);
        std::iota(hp.blocks[qb].begin(), hp.blocks[qb].end(), 0);
        continue;
      }
      const double total = std::accumulate(mb.begin(), mb.end(), 0.0);
      std::vector<int64_t> order(qb + 1);
      std::iota(order.begin(), order.end(), 0);
      // The sink block and the diagonal block first, then by mass.
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        const bool fa = a == 0 || a == qb, fb = b == 0 || b == qb;
        if (fa != fb) return fa;
        return mb[a] > mb[b];
      });
      double cum = 0;
      std::vector<int64_t>& chosen = hp.blocks[qb];
      for (int64_t kb : order) {
        const bool forced = kb == 0 || kb == qb;
        if (!forced && cum >= p.threshold * total) break;
        chosen.push_back(kb);
        cum += mb[kb];
      }
      std::sort(chosen.begin(), chosen.end());
    }
  });
  SelectionResult r{std::make_shared<PatternSelection>(std::move(heads), in.q_offset), 0.0};
  r.estimation_flops = bm.flops;
  return r;
}

}  // namespace internal

absl::StatusOr<AttentionResult> PrefillAttention(absl::string_view method,
                                                 const MethodParams& params,
                                                 const AttentionInput& input) {
  SF_ASSIGN_OR_RETURN(SelectionResult s, PrefillSelect(method, params, input));
  AttentionResult r = AttendSelected(input, std::move(s.selection));
  r.estimation_flops = s.estimation_flops;
  return r;
}

absl::StatusOr<SelectionResult> PrefillSelect(absl::string_view method, const MethodParams& params,
                                              const AttentionInput& input) {
  SF_RETURN_IF_ERROR(ValidateInput(input));
  const std::string name(method);
  auto mismatch = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("parameters given do not belong to method ", name));
  };
  if (name == "dense") return Dense(input);
  if (name == "streaming") {
    const auto* p = std::get_if<StreamingParams>(&params);
    return p ? Streaming(input, *p) : mismatch();
  }
  if (name == "oracle_topk") {
    const auto* p = std::get_if<OracleTopKParams>(&params);
    return p ? OracleTopK(input, *p) : mismatch();
  }
  if (name == "block_sparse") {
    const auto* p = std::get_if<BlockSparseParams>(&params);
    return p ? BlockSparse(input, *p) : mismatch();
  }
  if (name == "vertical_slash") {
    const auto* p = std::get_if<VerticalSlashParams>(&params);
    return p ? VerticalSlash(input, *p) : mismatch();
  }
  if (name == "flexprefill") {
    const auto* p = std::get_if<FlexPrefillParams>(&params);
    return p ? FlexPrefill(input, *p) : mismatch();
  }
  if (name == "xattention") {
    const auto* p = std::get_if<XAttentionParams>(&params);
    return p ? XAttention(input, *p) : mismatch();
  }
  if (name == "snapkv" || name == "ada_snapkv" || name == "quest") {
    return absl::InvalidArgumentError(absl::StrCat(
        "method ", name, " is a decode method (its prefill is dense); use it for decode"));
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown attention method '", name, "'"));
}

}  // namespace sf::kernels
