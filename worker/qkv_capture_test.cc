#include "worker/qkv_capture.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/attention.h"
#include "worker/model/engine.h"
#include "worker/model/test_util.h"
#include "worker/model/tiny_model.h"

namespace sf::worker {
namespace {

using ::sf::testing::StatusIs;
using ::testing::HasSubstr;

class QkvCaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = model::testing::FreshTestDir();
    model::TinyModelOptions options;
    options.num_layers = 3;
    options.num_heads = 4;
    options.num_kv_heads = 2;
    SF_ASSERT_OK(model::WriteTinyModel(dir, options));
    SF_ASSERT_OK_AND_ASSIGN(engine_, model::CreateEngine(dir, {}));
    for (int i = 0; i < 77; ++i) prompt_.push_back((i * 37 + 5) % 500);
  }

  std::unique_ptr<model::Engine> engine_;
  std::vector<TokenId> prompt_;
};

TEST_F(QkvCaptureTest, KeysAndValuesAreTheLayersCacheAfterADensePrefill) {
  SF_ASSERT_OK_AND_ASSIGN(kernels::LayerQkv qkv, CaptureLayerQkv(*engine_, prompt_, 1));
  const int64_t n = static_cast<int64_t>(prompt_.size()), d = engine_->config().head_dim;
  EXPECT_EQ(qkv.q.heads, 4);
  EXPECT_EQ(qkv.k.heads, 2);
  EXPECT_EQ(qkv.q.len, n);
  EXPECT_EQ(qkv.v.len, n);
  EXPECT_EQ(qkv.q.dim, d);
  EXPECT_EQ(engine_->position(), 0) << "the engine is left reset";

  // The same prompt with plain dense attention leaves exactly these rows in the cache.
  SF_ASSERT_OK(engine_->Prefill(prompt_).status());
  const model::KvCache& cache = engine_->cache();
  for (int h = 0; h < 2; ++h) {
    ASSERT_EQ(cache.length(1, h), n);
    for (int64_t i = 0; i < n * d; ++i) {
      ASSERT_EQ(qkv.k.Row(h, 0)[i], cache.keys(1, h)[i]) << "head " << h << " at " << i;
      ASSERT_EQ(qkv.v.Row(h, 0)[i], cache.values(1, h)[i]) << "head " << h << " at " << i;
    }
  }
}

// Records layer `layer`'s dense attention output in prefill ([n][Hq][D]).
class OutputRecorder : public model::AttentionHook {
 public:
  explicit OutputRecorder(int layer) : layer_(layer) {}
  std::string Name() const override { return "recorder"; }
  absl::Status Attend(const model::AttentionCall& call, model::AttentionStats* stats) override {
    SF_RETURN_IF_ERROR(dense_.Attend(call, stats));
    if (call.layer == layer_) {
      const int64_t width = int64_t{call.num_q_heads} * call.head_dim;
      for (int j = 0; j < call.num_queries; ++j) {
        out_.insert(out_.end(), call.out + j * call.out_row_stride,
                    call.out + j * call.out_row_stride + width);
      }
    }
    return absl::OkStatus();
  }
  const std::vector<float>& out() const { return out_; }

 private:
  const int layer_;
  model::DenseAttention dense_;
  std::vector<float> out_;
};

TEST_F(QkvCaptureTest, CapturedQkvReproduceTheLayersAttentionOutput) {
  SF_ASSERT_OK_AND_ASSIGN(kernels::LayerQkv qkv, CaptureLayerQkv(*engine_, prompt_, 2));
  OutputRecorder recorder(2);
  engine_->SetAttention(&recorder, nullptr);
  SF_ASSERT_OK(engine_->Prefill(prompt_).status());
  engine_->SetAttention(nullptr, nullptr);

  SF_ASSERT_OK_AND_ASSIGN(kernels::MethodParams dense, kernels::ParseMethodParams("dense", {}));
  SF_ASSERT_OK_AND_ASSIGN(
      kernels::AttentionResult reference,
      kernels::PrefillAttention("dense", dense, {qkv.q.View(), qkv.k.View(), qkv.v.View(), 0}));
  const int64_t n = qkv.q.len, hq = qkv.q.heads, d = qkv.q.dim;
  ASSERT_EQ(static_cast<int64_t>(recorder.out().size()), n * hq * d);
  double worst = 0;
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t h = 0; h < hq; ++h) {
      for (int64_t x = 0; x < d; ++x) {
        const double want = reference.output.Row(h, j)[x];
        const double got = recorder.out()[(j * hq + h) * d + x];
        worst = std::max(worst, std::abs(got - want) / (1e-3 + std::abs(want)));
      }
    }
  }
  EXPECT_LT(worst, 1e-4) << "the captured Q/K/V are not what the layer attended with";
}

TEST_F(QkvCaptureTest, LayerOutsideTheModelIsRefused) {
  EXPECT_THAT(CaptureLayerQkv(*engine_, prompt_, 3).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside the model's 3")));
  EXPECT_THAT(CaptureLayerQkv(*engine_, {}, 0).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
}

}  // namespace
}  // namespace sf::worker
