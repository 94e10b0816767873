// flexprefill on the CPU: the study's variant (columns and diagonals covering a mass
// gamma of the last queries' attention) and the paper's query-aware variant (heads
// whose pooled estimate matches the truth keep blocks up to gamma; docs/methods.md).
#include "kernels/cpu/methods/flexprefill.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/status.h"
#include "kernels/cpu/cpu_method.h"
#include "kernels/cpu/methods/method_list.h"
#include "kernels/cpu/selection_internal.h"
#include "kernels/cpu/shared_stats.h"
#include "methods/registry.h"

namespace sf::kernels {
namespace {

using internal::CoverCount;
using internal::DotD;
using internal::ForcedTopK;
using internal::HeadPattern;
using internal::MeanRows;
using internal::TopKIndices;

// The study's FlexPrefill keeps the first 4 columns and the last 64 diagonals, fixed.
constexpr int64_t kFlexSinkColumns = 4;
constexpr int64_t kFlexLocalDiagonals = 64;

using Params = FlexPrefillParams;

// FlexPrefill's query-aware pattern for head h: per query block, the smallest set of
// key blocks reaching mass gamma under the pooled estimate, plus the sink and diagonal
// blocks and at least min_budget tokens.
void QueryAwareBlocks(const AttentionInput& in, const Params& p,
                      const std::vector<std::vector<double>>& pooled_k, int64_t h,
                      HeadPattern* hp) {
  const int64_t first_qb = in.q_offset / p.block;
  const int64_t last_qb = (in.q_offset + in.q.len - 1) / p.block;
  const double scale = 1.0 / std::sqrt(static_cast<double>(in.q.dim));
  const int64_t min_blocks = (p.min_budget + p.block - 1) / p.block;
  hp->block = p.block;
  hp->blocks.resize(last_qb + 1);
  for (int64_t qb = first_qb; qb <= last_qb; ++qb) {
    auto [rb, re] = internal::QueryRowsOfBlock(in, p.block, qb);
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
void StudyLines(const Params& p, int64_t lk, int64_t est_q, std::vector<double> cols,
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

// REQUIRES !p.original and mass.last_q == min(p.last_q, in.q.len).
SelectionResult StudyFrom(const AttentionInput& in, const Params& p,
                          const internal::LineMass& mass) {
  const int64_t lk = in.k.len, est_q = mass.last_q;
  std::vector<HeadPattern> heads(in.q.heads);
  ParallelFor(in.q.heads, 0, [&](int64_t h) {
    StudyLines(p, lk, est_q, mass.columns[h], mass.diagonals[h], &heads[h]);
  });
  return internal::PatternResult(std::move(heads), in.q_offset,
                                 2.0 * in.q.heads * est_q * static_cast<double>(lk) * in.q.dim);
}

SelectionResult Original(const AttentionInput& in, const Params& p) {
  const int64_t lk = in.k.len;
  const int64_t est_q = std::min(p.block, in.q.len);
  const int64_t nb = (lk + p.block - 1) / p.block;
  const auto pooled_k = internal::PoolKeys(in.k, p.block);
  std::vector<HeadPattern> heads(in.q.heads);
  std::vector<double> flops(in.q.heads, 0.0);
  ParallelFor(in.q.heads, 0, [&](int64_t h) {
    std::vector<double> cols, diags;
    internal::ColumnAndDiagonalMass(in, h, est_q, &cols, &diags);
    flops[h] = 2.0 * est_q * lk * in.q.dim;
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
    StudyLines(p, lk, est_q, std::move(cols), std::move(diags), &heads[h]);
  });
  return internal::PatternResult(std::move(heads), in.q_offset,
                                 std::accumulate(flops.begin(), flops.end(), 0.0));
}

class FlexPrefill : public CpuMethod {
 public:
  FlexPrefill(const MethodInfo& info, Params p) : CpuMethod(info), p_(p) {}

  absl::StatusOr<SelectionResult> SelectPrefill(const AttentionInput& in) const override {
    if (p_.original) return Original(in, p_);
    return StudyFrom(in, p_, internal::ComputeLineMass(in, std::min(p_.last_q, in.q.len)));
  }

  std::optional<absl::StatusOr<SelectionResult>> SelectShared(const AttentionInput& in,
                                                              const TensorView&, Phase,
                                                              SharedStats& stats) const override {
    if (p_.original) return std::nullopt;
    return StudyFrom(in, p_, stats.Lines(std::min(p_.last_q, in.q.len)));
  }

 private:
  Params p_;
};

absl::StatusOr<std::shared_ptr<const CpuMethod>> Bind(const ParamReader& r) {
  SF_ASSIGN_OR_RETURN(const Params p, FlexPrefillParamsFrom(r));
  return std::make_shared<FlexPrefill>(r.method(), p);
}

std::optional<int64_t> LineMassRows(const ParamReader& r) {
  absl::StatusOr<std::string> variant = r.Choice("variant");
  if (!variant.ok() || *variant == "original") return std::nullopt;
  absl::StatusOr<int64_t> last_q = r.Int("last_q");
  if (!last_q.ok()) return std::nullopt;
  return *last_q;
}

}  // namespace

absl::StatusOr<FlexPrefillParams> FlexPrefillParamsFrom(const ParamReader& r) {
  FlexPrefillParams p;
  SF_ASSIGN_OR_RETURN(p.gamma, r.Number("gamma"));
  SF_ASSIGN_OR_RETURN(p.tau, r.Number("tau"));
  SF_ASSIGN_OR_RETURN(p.min_budget, r.Int("min_budget"));
  SF_ASSIGN_OR_RETURN(p.last_q, r.Int("last_q"));
  SF_ASSIGN_OR_RETURN(p.block, r.Int("block"));
  absl::StatusOr<std::string> variant = r.Choice("variant");
  if (!variant.ok()) return variant.status();
  p.original = absl::string_view(*variant) == "original";
  return p;
}

absl::StatusOr<FlexPrefillParams> FlexPrefillParamsFrom(const ParamMap& params) {
  SF_ASSIGN_OR_RETURN(const MethodInfo* method, LookUpMethod("flexprefill"));
  const ParamReader reader(*method, params);
  SF_RETURN_IF_ERROR(reader.CheckNamesKnown());
  return FlexPrefillParamsFrom(reader);
}

MethodParams FlexPrefillMethodParams(const FlexPrefillParams& p) {
  const MethodInfo* method = FindMethod("flexprefill");
  return MethodParams(std::make_shared<FlexPrefill>(*method, p));
}

CpuMethodEntry FlexPrefillCpu() {
  return {.name = "flexprefill",
          .bind = Bind,
          .calibrate = [](const Calibration& c) { return CalibrateMassThreshold(c, "gamma"); },
          .line_mass_rows = LineMassRows};
}

}  // namespace sf::kernels
