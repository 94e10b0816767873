// Estimation FLOPs of each prefill method, counted as the CPU reference counts them
// (kernels/cpu/methods/<name>.cc), from the shape and parameters alone.
#include <algorithm>

#include "absl/status/status.h"
#include "common/status.h"
#include "kernels/cuda/attention/select.h"
#include "kernels/cuda/attention/select_host.h"

namespace sf::cuda {
namespace {

using select_internal::PrefillShape;

double LineFlops(const PrefillShape& s, int64_t last_q) {
  return 2.0 * s.hq * std::min(last_q, s.lq) * static_cast<double>(s.lk) * s.d;
}

double BlockSparseFlops(const PrefillShape& s, const kernels::BlockSparseParams& p) {
  const int64_t first_qb = s.q_offset / p.block, last_qb = (s.q_offset + s.lq - 1) / p.block;
  const double nqb = static_cast<double>(last_qb - first_qb + 1);
  return s.hq * (s.lq * s.d + nqb * (first_qb + last_qb + 2) / 2.0 * 2.0 * s.d) +
         s.hkv * static_cast<double>(s.lk) * s.d;
}

// XAttention: 2 D per (reduced row r, reduced column c <= r, t) whose query r*S + S-1-t
// is one of the call's and whose key c*S + t exists.
double XAttentionFlops(const PrefillShape& s, const kernels::XAttentionParams& p) {
  const int64_t st = p.stride, first_pos = s.q_offset, last_pos = s.q_offset + s.lq - 1;
  double per_head = 0;
  for (int64_t r = first_pos / st; r <= last_pos / st; ++r) {
    int64_t row_t = 0, diag_t = 0;
    for (int64_t t = 0; t < st; ++t) {
      const int64_t qp = r * st + st - 1 - t;
      if (qp < first_pos || qp > last_pos) continue;
      ++row_t;
      if (r * st + t < s.lk) ++diag_t;
    }
    per_head += static_cast<double>(r) * row_t + diag_t;
  }
  return 2.0 * s.d * per_head * s.hq;
}

double FlexPrefillFlops(const PrefillShape& s, const kernels::FlexPrefillParams& p,
                        int64_t query_aware_heads) {
  if (!p.original) return LineFlops(s, p.last_q);
  const double nb = static_cast<double>((s.lk + p.block - 1) / p.block);
  return LineFlops(s, p.block) + query_aware_heads * 2.0 * s.d * nb * (nb + 1) / 2.0;
}

}  // namespace

absl::StatusOr<double> EstimationFlops(const AttentionParams& attn,
                                       const kernels::VerticalSlashParams& p) {
  SF_ASSIGN_OR_RETURN(PrefillShape s, select_internal::CheckPrefillShape(attn, "estimation"));
  return LineFlops(s, p.last_q);
}

absl::StatusOr<double> EstimationFlops(const AttentionParams& attn,
                                       const kernels::FlexPrefillParams& p,
                                       int64_t query_aware_heads) {
  SF_ASSIGN_OR_RETURN(PrefillShape s, select_internal::CheckPrefillShape(attn, "estimation"));
  return FlexPrefillFlops(s, p, query_aware_heads);
}

absl::StatusOr<double> EstimationFlops(const AttentionParams& attn,
                                       const kernels::BlockSparseParams& p) {
  SF_ASSIGN_OR_RETURN(PrefillShape s, select_internal::CheckPrefillShape(attn, "estimation"));
  if (p.block < 1) return absl::InvalidArgumentError("parameter 'block' must be >= 1");
  return BlockSparseFlops(s, p);
}

absl::StatusOr<double> EstimationFlops(const AttentionParams& attn,
                                       const kernels::XAttentionParams& p) {
  SF_ASSIGN_OR_RETURN(PrefillShape s, select_internal::CheckPrefillShape(attn, "estimation"));
  if (p.stride < 1) return absl::InvalidArgumentError("parameter 'stride' must be >= 1");
  return XAttentionFlops(s, p);
}

absl::StatusOr<double> EstimationFlops(const AttentionParams& attn,
                                       const kernels::StreamingParams& /*p*/) {
  SF_RETURN_IF_ERROR(select_internal::CheckPrefillShape(attn, "estimation").status());
  return 0.0;  // streaming estimates nothing
}

}  // namespace sf::cuda
