// oracle_topk on the CPU: the exact top-k keys per query by q.k, ties to the lower
// position, in both phases (docs/methods.md).
#include "common/status.h"
#include "kernels/cpu/cpu_method.h"
#include "kernels/cpu/methods/method_list.h"
#include "kernels/cpu/selection_internal.h"

namespace sf::kernels {
namespace {

class OracleTopK : public CpuMethod {
 public:
  OracleTopK(const MethodInfo& info, int64_t top_k) : CpuMethod(info), top_k_(top_k) {}

  absl::StatusOr<SelectionResult> SelectPrefill(const AttentionInput& in) const override {
    if (top_k_ > in.k.len) {
      return internal::TooLarge("oracle_topk", "top_k", top_k_, in.k.len, "the sequence");
    }
    // Choosing needs every causal q.k: the full score matrix.
    const double causal = in.q.heads * (2.0 * in.q_offset + in.q.len + 1) * in.q.len / 2.0;
    return SelectionResult{std::make_shared<internal::OracleSelection>(in, top_k_),
                           2.0 * in.q.dim * causal};
  }

  DecodeRun decode_run() const override { return DecodeRun::kPerStep; }
  int64_t exact_top_k() const override { return top_k_; }

 private:
  int64_t top_k_;
};

absl::StatusOr<std::shared_ptr<const CpuMethod>> Bind(const ParamReader& r) {
  SF_ASSIGN_OR_RETURN(const int64_t top_k, r.Int("top_k"));
  return std::make_shared<OracleTopK>(r.method(), top_k);
}

}  // namespace

CpuMethodEntry OracleTopKCpu() { return {.name = "oracle_topk", .bind = Bind}; }

}  // namespace sf::kernels
