// xattention on the CPU: antidiagonal sums of stride x stride cells, a softmax per
// reduced row, and per query block the key blocks by descending mass up to a threshold
// (XAttention, Xu et al. 2025; docs/methods.md).
#include "kernels/cpu/methods/xattention.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cpu/cpu_method.h"
#include "kernels/cpu/methods/method_list.h"
#include "kernels/cpu/selection_internal.h"
#include "kernels/cpu/shared_stats.h"
#include "methods/registry.h"

namespace sf::kernels {
namespace {

using Params = XAttentionParams;

// The antidiagonal block mass per query head and query block: mass[h][qb][kb].
using internal::BlockMass;

absl::Status Check(const Params& p) {
  if (p.stride > p.block || p.block % p.stride != 0) {
    return absl::InvalidArgumentError(absl::StrCat("parameter 'stride' of method xattention (",
                                                   p.stride, ") must divide 'block' (", p.block,
                                                   ")"));
  }
  return absl::OkStatus();
}

BlockMass ComputeMass(const AttentionInput& in, int64_t block, int64_t stride) {
  const int64_t s = stride, lk = in.k.len, d = in.q.dim;
  const int64_t per_block = block / s;  // reduced units per block
  const int64_t first_pos = in.q_offset, last_pos = in.q_offset + in.q.len - 1;
  const int64_t first_r = first_pos / s, last_r = last_pos / s;
  const int64_t last_qb = last_pos / block;
  const double scale = 1.0 / (std::sqrt(static_cast<double>(d)) * s);
  BlockMass out;
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
          acc += internal::Dot(in.q.Row(h, qp - in.q_offset), in.k.Row(kvh, kp), d);
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

SelectionResult SelectFrom(const AttentionInput& in, const Params& p, const BlockMass& bm) {
  const int64_t first_pos = in.q_offset, last_pos = in.q_offset + in.q.len - 1;
  const int64_t last_qb = last_pos / p.block;
  std::vector<internal::HeadPattern> heads(in.q.heads);
  ParallelFor(in.q.heads, 0, [&](int64_t h) {
    internal::HeadPattern& hp = heads[h];
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
  return internal::PatternResult(std::move(heads), in.q_offset, bm.flops);
}

class XAttention : public CpuMethod {
 public:
  XAttention(const MethodInfo& info, Params p) : CpuMethod(info), p_(p) {}

  absl::StatusOr<SelectionResult> SelectPrefill(const AttentionInput& in) const override {
    SF_RETURN_IF_ERROR(Check(p_));
    return SelectFrom(in, p_, ComputeMass(in, p_.block, p_.stride));
  }

  std::optional<absl::StatusOr<SelectionResult>> SelectShared(const AttentionInput& in,
                                                              const TensorView&, Phase,
                                                              SharedStats& stats) const override {
    if (!Check(p_).ok()) return std::nullopt;
    const BlockMass& mass =
        stats.Get<BlockMass>(absl::StrCat("xattention.mass/", p_.block, "/", p_.stride),
                             [&] { return ComputeMass(stats.input(), p_.block, p_.stride); });
    return SelectFrom(in, p_, mass);
  }

 private:
  Params p_;
};

absl::StatusOr<std::shared_ptr<const CpuMethod>> Bind(const ParamReader& r) {
  SF_ASSIGN_OR_RETURN(const Params p, XAttentionParamsFrom(r));
  return std::make_shared<XAttention>(r.method(), p);
}

}  // namespace

BlockMass internal::ComputeXAttentionMass(const AttentionInput& in, int64_t block, int64_t stride) {
  return ComputeMass(in, block, stride);
}

absl::StatusOr<XAttentionParams> XAttentionParamsFrom(const ParamReader& r) {
  XAttentionParams p;
  SF_ASSIGN_OR_RETURN(p.block, r.Int("block"));
  SF_ASSIGN_OR_RETURN(p.stride, r.Int("stride"));
  SF_ASSIGN_OR_RETURN(p.threshold, r.Number("threshold"));
  return p;
}

absl::StatusOr<XAttentionParams> XAttentionParamsFrom(const ParamMap& params) {
  SF_ASSIGN_OR_RETURN(const MethodInfo* method, LookUpMethod("xattention"));
  const ParamReader reader(*method, params);
  SF_RETURN_IF_ERROR(reader.CheckNamesKnown());
  return XAttentionParamsFrom(reader);
}

MethodParams XAttentionMethodParams(const XAttentionParams& p) {
  const MethodInfo* method = FindMethod("xattention");
  return MethodParams(std::make_shared<XAttention>(*method, p));
}

CpuMethodEntry XAttentionCpu() {
  return {.name = "xattention", .bind = Bind, .calibrate = [](const Calibration& c) {
            return CalibrateMassThreshold(c, "threshold");
          }};
}

}  // namespace sf::kernels
