// dense on the CPU: every causal key (docs/methods.md).
#include <numeric>

#include "kernels/cpu/cpu_method.h"
#include "kernels/cpu/methods/method_list.h"
#include "kernels/cpu/selection_internal.h"

namespace sf::kernels {
namespace {

class Dense : public CpuMethod {
 public:
  using CpuMethod::CpuMethod;

  absl::StatusOr<SelectionResult> SelectPrefill(const AttentionInput& in) const override {
    std::vector<internal::HeadPattern> heads(in.q.heads);
    for (internal::HeadPattern& p : heads) p.window = internal::kAll;
    return internal::PatternResult(std::move(heads), in.q_offset, 0.0);
  }

  absl::StatusOr<KeptTokens> CompressKv(const TensorView&, const TensorView& keys) const override {
    KeptTokens kept;
    kept.per_kv_head.resize(keys.heads);
    for (auto& k : kept.per_kv_head) {
      k.resize(keys.len);
      std::iota(k.begin(), k.end(), 0);
    }
    return kept;
  }

  bool attends_every_key() const override { return true; }
};

}  // namespace

CpuMethodEntry DenseCpu() {
  return {.name = "dense",
          .bind = [](const ParamReader& r) -> absl::StatusOr<std::shared_ptr<const CpuMethod>> {
            return std::make_shared<Dense>(r.method());
          }};
}

}  // namespace sf::kernels
