#include "common/gpu_memory.h"

#include "common/qwen25_shapes.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf::model {
namespace {

using ::sf::testing::StatusIs;
using ::testing::HasSubstr;

constexpr int64_t kGiB = int64_t{1} << 30;

ModelShape Qwen72B() { return Qwen25Shape("qwen2.5-72b", 0).value(); }

ModelShape Tiny(bool tied) {
  ModelShape s;
  s.vocab_size = 96;
  s.hidden_size = 64;
  s.intermediate_size = 96;
  s.num_layers = 4;
  s.num_heads = 4;
  s.num_kv_heads = 2;
  s.head_dim = 16;
  s.tie_word_embeddings = tied;
  return s;
}

TEST(GpuMemoryTest, Estimate_StagesAddUpToTheWholeModelPlusTheirWorkspaces) {
  for (bool tied : {false, true}) {
    const ModelShape shape = Tiny(tied);
    const GpuMemorySettings s{.element_bytes = 2, .prefill_chunk_tokens = 8192};
    const GpuMemoryEstimate whole = EstimateGpuMemory(shape, s, 1000, 0, 4);
    const GpuMemoryEstimate a = EstimateGpuMemory(shape, s, 1000, 0, 1);
    const GpuMemoryEstimate b = EstimateGpuMemory(shape, s, 1000, 1, 4);
    EXPECT_EQ(a.kv_cache + b.kv_cache, whole.kv_cache);
    EXPECT_EQ(a.workspace, whole.workspace);
    // Tied embeddings: the last stage holds its own copy as the lm_head.
    const int64_t extra = tied ? 2 * shape.vocab_size * shape.hidden_size : 0;
    EXPECT_EQ(a.weights + b.weights, whole.weights + extra) << "tied " << tied;
    EXPECT_EQ(ProfileGpuMemory(shape, s, 1000).TotalBytes(), whole.total());
  }
}

TEST(GpuMemoryTest, Estimate_Qwen72BAt128KNeedsMoreThanOneH100) {
  const GpuMemorySettings s{.element_bytes = 2, .prefill_chunk_tokens = 8192};
  const GpuMemoryEstimate e = EstimateGpuMemory(Qwen72B(), s, 131072, 0, 80);
  // 72.7B parameters in bf16 and 80 layers x 2 x 1024 x 131072 x 2 bytes of cache.
  EXPECT_NEAR(static_cast<double>(e.weights) / kGiB, 135.4, 1.0);
  EXPECT_NEAR(static_cast<double>(e.kv_cache) / kGiB, 40.0, 0.1);
}

TEST(GpuMemoryTest, Plan_OneGpuWhenOneHoldsTheModel) {
  const LayerMemoryProfile p{.layers = 4,
                             .per_layer_bytes = 10,
                             .first_stage_bytes = 5,
                             .last_stage_bytes = 5,
                             .per_stage_bytes = 20};
  SF_ASSERT_OK_AND_ASSIGN(std::vector<LayerStage> stages, PlanLayerStages(p, {40, 80, 80}));
  ASSERT_EQ(stages.size(), 1u);
  EXPECT_EQ(stages[0].device, 1);  // the most memory, the lower index on ties
  EXPECT_EQ(stages[0].first_layer, 0);
  EXPECT_EQ(stages[0].end_layer, 4);
}

TEST(GpuMemoryTest, Plan_SpreadsLayersEvenlyOverTheFewestGpus) {
  // 80 layers of 1 GiB, 2 GiB of embeddings and of lm_head, 4 GiB of workspace per GPU:
  // 88 GiB on one GPU; four 40 GiB GPUs need three.
  const LayerMemoryProfile p{.layers = 80,
                             .per_layer_bytes = kGiB,
                             .first_stage_bytes = 2 * kGiB,
                             .last_stage_bytes = 2 * kGiB,
                             .per_stage_bytes = 4 * kGiB};
  SF_ASSERT_OK_AND_ASSIGN(std::vector<LayerStage> stages,
                          PlanLayerStages(p, {40 * kGiB, 40 * kGiB, 40 * kGiB, 40 * kGiB}));
  ASSERT_EQ(stages.size(), 3u) << DescribeStages(stages);
  EXPECT_EQ(DescribeStages(stages), "[0,27)@0 [27,54)@1 [54,80)@2");
  for (const LayerStage& s : stages) {
    EXPECT_LE(p.StageBytes(s.first_layer, s.end_layer), 40 * kGiB);
  }
}

TEST(GpuMemoryTest, Plan_UsesTheLargestGpusInDeviceOrder) {
  const LayerMemoryProfile p{.layers = 10, .per_layer_bytes = 10, .per_stage_bytes = 0};
  SF_ASSERT_OK_AND_ASSIGN(std::vector<LayerStage> stages, PlanLayerStages(p, {20, 60, 5, 60}));
  EXPECT_EQ(DescribeStages(stages), "[0,5)@1 [5,10)@3");
}

TEST(GpuMemoryTest, Plan_ResourceExhaustedWhenTheGpusCannotHoldIt) {
  const LayerMemoryProfile p{.layers = 4, .per_layer_bytes = kGiB, .per_stage_bytes = kGiB};
  EXPECT_THAT(PlanLayerStages(p, {kGiB, 2 * kGiB}),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("cannot be split")));
  // A GPU too small for even one layer with its workspace is no help.
  EXPECT_THAT(PlanLayerStages(p, {3 * kGiB, kGiB, kGiB}),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("GPU")));
}

TEST(GpuMemoryTest, Plan_RejectsBadInput) {
  LayerMemoryProfile p{.layers = 0, .per_layer_bytes = 1};
  EXPECT_THAT(PlanLayerStages(p, {10}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("layers")));
  p.layers = 2;
  p.per_stage_bytes = -1;
  EXPECT_THAT(PlanLayerStages(p, {10}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("per_stage_bytes")));
  p.per_stage_bytes = 0;
  EXPECT_THAT(PlanLayerStages(p, {10, -1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative")));
  EXPECT_THAT(PlanLayerStages(p, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no GPU")));
}

}  // namespace
}  // namespace sf::model
