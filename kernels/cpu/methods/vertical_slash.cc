// vertical_slash on the CPU: the last `last_q` queries' causal softmax gives column and
// diagonal scores; the top `verticals` columns and `slashes` diagonals are kept, the
// first `sink` columns and `local` diagonals forced (MInference, as the study runs it;
// docs/methods.md).
#include "kernels/cpu/methods/vertical_slash.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cpu/cpu_method.h"
#include "kernels/cpu/methods/method_list.h"
#include "kernels/cpu/selection_internal.h"
#include "kernels/cpu/shared_stats.h"
#include "methods/registry.h"

namespace sf::kernels {
namespace {

using Params = VerticalSlashParams;

absl::Status Check(const AttentionInput& in, const Params& p) {
  const int64_t lk = in.k.len;
  if (p.verticals > lk) {
    return internal::TooLarge("vertical_slash", "verticals", p.verticals, lk, "the sequence");
  }
  if (p.slashes > lk) {
    return internal::TooLarge("vertical_slash", "slashes", p.slashes, lk, "the sequence");
  }
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

// The selection from the line mass of the last min(last_q, Lq) rows.
absl::StatusOr<SelectionResult> SelectFrom(const AttentionInput& in, const Params& p,
                                           const internal::LineMass& mass) {
  SF_RETURN_IF_ERROR(Check(in, p));
  std::vector<internal::HeadPattern> heads(in.q.heads);
  ParallelFor(in.q.heads, 0, [&](int64_t h) {
    heads[h].columns = internal::ForcedTopK(mass.columns[h], p.sink, p.verticals);
    heads[h].offsets = internal::ForcedTopK(mass.diagonals[h], p.local, p.slashes);
  });
  const double flops = 2.0 * in.q.heads * mass.last_q * static_cast<double>(in.k.len) * in.q.dim;
  return internal::PatternResult(std::move(heads), in.q_offset, flops);
}

class VerticalSlash : public CpuMethod {
 public:
  VerticalSlash(const MethodInfo& info, Params p) : CpuMethod(info), p_(p) {}

  absl::StatusOr<SelectionResult> SelectPrefill(const AttentionInput& in) const override {
    SF_RETURN_IF_ERROR(Check(in, p_));
    return SelectFrom(in, p_, internal::ComputeLineMass(in, std::min(p_.last_q, in.q.len)));
  }

  std::optional<absl::StatusOr<SelectionResult>> SelectShared(const AttentionInput& in,
                                                              const TensorView&, Phase,
                                                              SharedStats& stats) const override {
    return SelectFrom(in, p_, stats.Lines(std::min(p_.last_q, in.q.len)));
  }

 private:
  Params p_;
};

absl::StatusOr<std::shared_ptr<const CpuMethod>> Bind(const ParamReader& r) {
  SF_ASSIGN_OR_RETURN(const Params p, VerticalSlashParamsFrom(r));
  return std::make_shared<VerticalSlash>(r.method(), p);
}

// Columns late in the sequence cover few rows, so the nominal mapping overshoots:
// bisect the line count (slashes following verticals) on the measured compression.
absl::StatusOr<ParamMap> Calibrate(const Calibration& c) {
  const int64_t len = c.length;
  SF_ASSIGN_OR_RETURN(ParamMap p,
                      ParamsForCompression(c.method.name, c.params, c.compression, len));
  p.erase("slashes");
  if (c.compression <= 1.0) return p;
  const ParamReader reader(c.method, p);
  SF_ASSIGN_OR_RETURN(const int64_t sink, reader.Int("sink"));
  SF_ASSIGN_OR_RETURN(const int64_t local, reader.Int("local"));
  int64_t lo = std::min(len, std::max(sink, local)), hi = len;
  while (lo < hi) {  // the largest count whose compression still reaches the target
    const int64_t mid = lo + (hi - lo + 1) / 2;
    p["verticals"] = mid;
    SF_ASSIGN_OR_RETURN(MethodParams t, ParseMethodParams(c.method.name, p));
    SF_ASSIGN_OR_RETURN(SelectionResult sel, c.select(t));
    if (MeasuredCompression(c, *sel.selection) >= c.compression) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  p["verticals"] = lo;
  return p;
}

std::optional<int64_t> LineMassRows(const ParamReader& r) {
  absl::StatusOr<int64_t> last_q = r.Int("last_q");
  if (!last_q.ok()) return std::nullopt;
  return *last_q;
}

}  // namespace

absl::StatusOr<VerticalSlashParams> VerticalSlashParamsFrom(const ParamReader& r) {
  VerticalSlashParams p;
  SF_ASSIGN_OR_RETURN(p.last_q, r.Int("last_q"));
  SF_ASSIGN_OR_RETURN(p.sink, r.Int("sink"));
  SF_ASSIGN_OR_RETURN(p.local, r.Int("local"));
  SF_ASSIGN_OR_RETURN(p.verticals, r.Int("verticals"));
  if (r.Has("slashes")) {
    SF_ASSIGN_OR_RETURN(p.slashes, r.Int("slashes"));
  } else {
    p.slashes = p.verticals;  // the study sets both sizes equal
  }
  return p;
}

absl::StatusOr<VerticalSlashParams> VerticalSlashParamsFrom(const ParamMap& params) {
  SF_ASSIGN_OR_RETURN(const MethodInfo* method, LookUpMethod("vertical_slash"));
  const ParamReader reader(*method, params);
  SF_RETURN_IF_ERROR(reader.CheckNamesKnown());
  return VerticalSlashParamsFrom(reader);
}

MethodParams VerticalSlashMethodParams(const VerticalSlashParams& p) {
  const MethodInfo* method = FindMethod("vertical_slash");
  return MethodParams(std::make_shared<VerticalSlash>(*method, p));
}

CpuMethodEntry VerticalSlashCpu() {
  return {.name = "vertical_slash",
          .bind = Bind,
          .calibrate = Calibrate,
          .line_mass_rows = LineMassRows};
}

}  // namespace sf::kernels
