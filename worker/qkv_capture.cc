#include "worker/qkv_capture.h"

#include <algorithm>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/model/attention.h"

namespace sf::worker {
namespace {

// Dense attention that copies what layer `layer_` sees in prefill.
class CaptureHook : public model::AttentionHook {
 public:
  CaptureHook(int layer, kernels::LayerQkv* out) : layer_(layer), out_(out) {}

  std::string Name() const override { return "capture"; }

  absl::Status Attend(const model::AttentionCall& call, model::AttentionStats* stats) override {
    if (call.layer == layer_ && call.phase == model::AttentionPhase::kPrefill) {
      const int64_t n = call.num_queries, d = call.head_dim;
      out_->q = kernels::Tensor(call.num_q_heads, n, d);
      for (int64_t j = 0; j < n; ++j) {
        for (int h = 0; h < call.num_q_heads; ++h) {
          std::copy_n(call.q + j * call.q_row_stride + h * d, d, out_->q.Row(h, j));
        }
      }
      out_->k = kernels::Tensor(call.num_kv_heads, n, d);
      out_->v = kernels::Tensor(call.num_kv_heads, n, d);
      for (int h = 0; h < call.num_kv_heads; ++h) {
        // The prefill started from an empty cache, so its rows are exactly the prompt's.
        std::copy_n(call.cache->keys(call.layer, h), n * d, out_->k.Row(h, 0));
        std::copy_n(call.cache->values(call.layer, h), n * d, out_->v.Row(h, 0));
      }
      captured_ = true;
    }
    return dense_.Attend(call, stats);
  }

  bool captured() const { return captured_; }

 private:
  const int layer_;
  kernels::LayerQkv* const out_;
  model::DenseAttention dense_;
  bool captured_ = false;
};

}  // namespace

absl::StatusOr<kernels::LayerQkv> CaptureLayerQkv(model::Engine& engine,
                                                  absl::Span<const TokenId> prompt, int layer) {
  const int64_t layers = engine.config().num_layers;
  if (layer < 0 || layer >= layers) {
    return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " is outside the model's ",
                                                   layers, " layers (0 to ", layers - 1, ")"));
  }
  if (prompt.empty()) return absl::InvalidArgumentError("the prompt to capture is empty");
  kernels::LayerQkv qkv;
  CaptureHook hook(layer, &qkv);
  engine.Reset();
  engine.SetAttention(&hook, nullptr);
  absl::Cleanup restore = [&engine] {
    engine.SetAttention(nullptr, nullptr);
    engine.Reset();
  };
  SF_RETURN_IF_ERROR(engine.Prefill(prompt).status());
  if (!hook.captured()) {
    return absl::InternalError(absl::StrCat("layer ", layer, " ran no prefill attention"));
  }
  return qkv;
}

}  // namespace sf::worker
