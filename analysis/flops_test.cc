#include "analysis/flops.h"

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace sf::analysis {
namespace {

using ::sf::testing::StatusIs;
using ::testing::HasSubstr;

// Parameter counts by hand from each config.json (head_dim 128, vocab 152064,
// q/k/v biases, untied embeddings). Per layer:
//   attention = h*h (q) + 2*h*(kv*128) (k, v) + h*h (o) + h + 2*kv*128 (biases)
//   mlp       = 3*h*intermediate
// linear = layers*(attention + mlp) + h*vocab (LM head)
// total  = linear + h*vocab (embedding) + (2*layers + 1)*h (RMSNorm weights)
TEST(Flops_Qwen25_7B, ParamsMatchHandCount) {
  // h=3584, 28 layers, kv=4: attention = 12845056 + 2*1835008 + 12845056 + 3584 + 1024
  // = 29364736; mlp = 3*3584*18944 = 203685888; per layer 233050624; x28 = 6525417472;
  // LM head 3584*152064 = 544997376 -> linear 7070414848.
  EXPECT_DOUBLE_EQ(LinearParams(Qwen25_7B()), 7070414848.0);
  // + embedding 544997376 + norms 57*3584 = 204288 -> 7615616512 (the 7.61B of the card).
  EXPECT_DOUBLE_EQ(TotalParams(Qwen25_7B()), 7615616512.0);
}

TEST(Flops_Qwen25_14B, ParamsMatchHandCount) {
  // h=5120, 48 layers, kv=8: attention = 26214400 + 2*5242880 + 26214400 + 5120 + 2048
  // = 62921728; mlp = 3*5120*13824 = 212336640; per layer 275258368; x48 = 13212401664;
  // + LM head 5120*152064 = 778567680 -> 13990969344.
  EXPECT_DOUBLE_EQ(LinearParams(Qwen25_14B()), 13990969344.0);
  // + embedding 778567680 + norms 97*5120 = 496640 -> 14770033664 (14.7B).
  EXPECT_DOUBLE_EQ(TotalParams(Qwen25_14B()), 14770033664.0);
}

TEST(Flops_Qwen25_32B, ParamsMatchHandCount) {
  // attention as 14B = 62921728; mlp = 3*5120*27648 = 424673280; per layer 487595008;
  // x64 = 31206080512; + LM head 778567680 -> 31984648192.
  EXPECT_DOUBLE_EQ(LinearParams(Qwen25_32B()), 31984648192.0);
  // + embedding 778567680 + norms 129*5120 = 660480 -> 32763876352 (32.8B).
  EXPECT_DOUBLE_EQ(TotalParams(Qwen25_32B()), 32763876352.0);
}

TEST(Flops_Qwen25_72B, ParamsMatchHandCount) {
  // h=8192, 80 layers, kv=8: attention = 67108864 + 2*8388608 + 67108864 + 8192 + 2048
  // = 151005184; mlp = 3*8192*29568 = 726663168; per layer 877668352; x80 = 70213468160;
  // + LM head 8192*152064 = 1245708288 -> 71459176448.
  EXPECT_DOUBLE_EQ(LinearParams(Qwen25_72B()), 71459176448.0);
  // + embedding 1245708288 + norms 161*8192 = 1318912 -> 72706203648 (72.7B).
  EXPECT_DOUBLE_EQ(TotalParams(Qwen25_72B()), 72706203648.0);
}

TEST(Flops_DensePrefill7B, MatchesHandComputedValue) {
  // L = 16384: linear 2 * 7070414848 * 16384 = 231683353739264;
  // attention 4*28*28*128 = 401408 per pair, pairs 16384*16385/2 = 134225920
  // -> 53879358095360.
  const FlopsBreakdown f = ComputeFlops(Qwen25_7B(), 16384, 0, 1.0, 1.0, 0.0);
  EXPECT_DOUBLE_EQ(f.prefill_linear, 231683353739264.0);
  EXPECT_DOUBLE_EQ(f.prefill_attention, 53879358095360.0);
  EXPECT_DOUBLE_EQ(f.Decode(), 0.0);
  EXPECT_DOUBLE_EQ(f.Total(), 231683353739264.0 + 53879358095360.0);
}

TEST(Flops_Decode7B, CountsGrowingContextPerStep) {
  // 100 steps after L = 16384: linear 2 * 7070414848 * 100 = 1414082969600;
  // pairs sum_{t=0}^{99} (16384 + t + 1) = 100*16384 + 100*101/2 = 1643450
  // -> 401408 * 1643450 = 659693977600; decode compression 4 divides it.
  const FlopsBreakdown f = ComputeFlops(Qwen25_7B(), 16384, 100, 1.0, 4.0, 123.0);
  EXPECT_DOUBLE_EQ(f.decode_linear, 1414082969600.0);
  EXPECT_DOUBLE_EQ(f.decode_attention, 659693977600.0 / 4.0);
  EXPECT_DOUBLE_EQ(f.indexing, 123.0);
  EXPECT_DOUBLE_EQ(f.prefill_attention, 53879358095360.0);
}

TEST(Flops_SparsePrefill72B, DividesAttentionByCompression) {
  // L = 131072, C = 10: linear 2 * 71459176448 * 131072 = 18732594350784512;
  // attention 4*80*64*128 = 2621440 per pair, pairs 131072*131073/2 = 8590000128,
  // / 10 -> 2251816993554432.
  const FlopsBreakdown f = ComputeFlops(Qwen25_72B(), 131072, 0, 10.0, 1.0, 0.0);
  EXPECT_DOUBLE_EQ(f.prefill_linear, 18732594350784512.0);
  EXPECT_DOUBLE_EQ(f.prefill_attention, 2251816993554432.0);
}

TEST(Flops_Estimation, VerticalSlashAndBlockSparseByHand) {
  // vertical_slash: 2*28*28*128 = 200704 per pair, 64 queries x 16384 keys
  // -> 200704 * 1048576 = 210453397504.
  EXPECT_DOUBLE_EQ(*EstimationFlops("vertical_slash", Qwen25_7B(), 16384, 0), 210453397504.0);
  // block_sparse, blocks of 16: 1024 pooled blocks, 1024*1025/2 = 524800 block pairs
  // -> 200704 * 524800 = 105329459200.
  EXPECT_DOUBLE_EQ(*EstimationFlops("block_sparse", Qwen25_7B(), 16384, 0), 105329459200.0);
  EXPECT_DOUBLE_EQ(*EstimationFlops("dense", Qwen25_7B(), 16384, 0), 0.0);
  // quest, 2 steps over L = 32 with pages of 16: ceil(33/16) + ceil(34/16) = 6 pages,
  // 4 * 28*28*128 per page -> 401408 * 6 = 2408448.
  EXPECT_DOUBLE_EQ(*EstimationFlops("quest", Qwen25_7B(), 32, 2), 2408448.0);
  // snapkv: the 256-query observation window against 16384 keys
  // -> 200704 * 256 * 16384 = 841813590016; a prompt shorter than the window: 100 x 100.
  EXPECT_DOUBLE_EQ(*EstimationFlops("snapkv", Qwen25_7B(), 16384, 0), 841813590016.0);
  EXPECT_DOUBLE_EQ(*EstimationFlops("ada_snapkv", Qwen25_7B(), 100, 0), 200704.0 * 100 * 100);
}

TEST(Flops_Estimation, UnknownMethodIsInvalidArgument) {
  EXPECT_THAT(EstimationFlops("mystery", Qwen25_7B(), 1024, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("mystery")));
}

}  // namespace
}  // namespace sf::analysis
