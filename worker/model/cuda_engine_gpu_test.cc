// The CUDA engine against the CPU engine (the reference backend) on tiny random models of
// every architecture and RoPE variant, at lengths that are no multiple of any tile, with
// and without attention hooks; and against the conformance vectors of tests/data/model.
// Needs a GPU (label gpu: skipped, exit 77, without one).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "worker/method_hooks.h"
#include "worker/model/engine.h"
#include "worker/model/generate.h"
#include "worker/model/safetensors.h"
#include "worker/model/test_util.h"
#include "worker/model/testing/conformance.h"
#include "worker/model/tiny_model.h"

namespace sf::model {
namespace {

namespace fs = std::filesystem;
using ::sf::model::testing::FreshTestDir;
using ::sf::testing::StatusIs;

constexpr double kTolerance = 1e-4;  // float32 on both sides, different summation orders

std::vector<TokenId> Prompt(int n, int vocab) {
  std::vector<TokenId> t;
  for (int i = 0; i < n; ++i) t.push_back(static_cast<TokenId>((i * 37 + 11) % vocab));
  return t;
}

TinyModelOptions Tiny(Architecture arch) {
  TinyModelOptions o;
  o.architecture = arch;
  o.dtype = DType::kF32;
  o.vocab_size = 96;
  o.hidden_size = 64;
  o.intermediate_size = 96;
  o.num_heads = 4;
  o.num_kv_heads = 2;
  o.init_std = 0.2;
  return o;
}

// Largest over rows of max|got - want| / max|want| (the conformance test's measure).
double MaxRelativeError(const std::vector<float>& got, const std::vector<float>& want,
                        int64_t vocab) {
  EXPECT_EQ(got.size(), want.size());
  double worst = 0;
  for (size_t r = 0; r * vocab < want.size() && r * vocab < got.size(); ++r) {
    double scale = 1e-12, err = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      scale = std::max(scale, std::abs(double{want[r * vocab + i]}));
      err = std::max(err, std::abs(double{got[r * vocab + i]} - want[r * vocab + i]));
    }
    worst = std::max(worst, err / scale);
  }
  return worst;
}

struct Case {
  std::string name;
  TinyModelOptions options;
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  cases.push_back({"llama_gqa", Tiny(Architecture::kLlama)});
  TinyModelOptions qwen = Tiny(Architecture::kQwen2);  // q/k/v bias
  qwen.rope.type = RopeType::kYarn;
  qwen.rope.factor = 4;
  qwen.rope.original_max_position_embeddings = 64;
  cases.push_back({"qwen2_bias_yarn", qwen});
  TinyModelOptions mistral = Tiny(Architecture::kMistral);
  mistral.rope.type = RopeType::kLlama3;
  mistral.rope.factor = 8;
  mistral.rope.original_max_position_embeddings = 32;
  cases.push_back({"mistral_llama3_rope", mistral});
  TinyModelOptions linear = Tiny(Architecture::kLlama);
  linear.rope.type = RopeType::kLinear;
  linear.rope.factor = 2;
  linear.num_kv_heads = 4;  // multi-head, no grouping
  linear.tie_word_embeddings = true;
  cases.push_back({"llama_mha_linear_rope_tied", linear});
  TinyModelOptions wide = Tiny(Architecture::kQwen2);
  wide.hidden_size = 256;  // head_dim 128, group of 4
  wide.num_heads = 2;
  wide.num_kv_heads = 1;
  wide.intermediate_size = 160;
  wide.dtype = DType::kBF16;
  cases.push_back({"qwen2_head_dim_128_bf16", wide});
  TinyModelOptions odd = Tiny(Architecture::kLlama);
  odd.hidden_size = 240;  // head_dim 80 (not a multiple of 32), group of 3
  odd.num_heads = 3;
  odd.num_kv_heads = 1;
  cases.push_back({"llama_head_dim_80", odd});
  TinyModelOptions big = Tiny(Architecture::kLlama);
  big.hidden_size = 512;  // head_dim 256, the kernels' largest
  big.num_heads = 2;
  big.num_kv_heads = 2;
  big.num_layers = 1;
  cases.push_back({"llama_head_dim_256", big});
  return cases;
}

class CudaVsCpu : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir();
    SF_ASSERT_OK(WriteTinyModel(dir_, GetParam().options));
    EngineOptions cpu;
    cpu.num_threads = 2;
    SF_ASSERT_OK_AND_ASSIGN(cpu_, CreateEngine(dir_, cpu));
    EngineOptions gpu;
    gpu.backend = BackendKind::kCuda;
    SF_ASSERT_OK_AND_ASSIGN(gpu_, CreateEngine(dir_, gpu));
  }
  std::string dir_;
  std::unique_ptr<Engine> cpu_, gpu_;
};

TEST_P(CudaVsCpu, PrefillAllPositionsAndDecode_MatchCpu) {
  const int64_t vocab = cpu_->config().vocab_size;
  EXPECT_THAT(gpu_->BackendName(), ::testing::StartsWith("cuda("));
  for (int n : {1, 17, 1000}) {
    SCOPED_TRACE(absl::StrCat(GetParam().name, ", prompt of ", n));
    cpu_->Reset();
    gpu_->Reset();
    const std::vector<TokenId> prompt = Prompt(n, static_cast<int>(vocab));
    SF_ASSERT_OK_AND_ASSIGN(std::vector<float> want, cpu_->Prefill(prompt, true));
    SF_ASSERT_OK_AND_ASSIGN(std::vector<float> got, gpu_->Prefill(prompt, true));
    ASSERT_EQ(got.size(), static_cast<size_t>(n * vocab));
    EXPECT_LE(MaxRelativeError(got, want, vocab), kTolerance) << "prefill";
    TokenId next = ArgMax(absl::MakeSpan(want).subspan(static_cast<size_t>((n - 1) * vocab)));
    for (int step = 0; step < 16; ++step) {
      SF_ASSERT_OK_AND_ASSIGN(want, cpu_->Decode(next));
      SF_ASSERT_OK_AND_ASSIGN(got, gpu_->Decode(next));
      EXPECT_LE(MaxRelativeError(got, want, vocab), kTolerance) << "decode step " << step;
      next = ArgMax(want);
    }
    EXPECT_EQ(gpu_->position(), cpu_->position());
  }
  EXPECT_EQ(gpu_->counters().tokens_prefilled, cpu_->counters().tokens_prefilled);
  EXPECT_EQ(gpu_->counters().tokens_decoded, cpu_->counters().tokens_decoded);
  EXPECT_EQ(gpu_->counters().prefill_attention.pairs_computed,
            cpu_->counters().prefill_attention.pairs_computed);
  EXPECT_EQ(gpu_->counters().decode_attention.pairs_dense,
            cpu_->counters().decode_attention.pairs_dense);
}

TEST_P(CudaVsCpu, ChunkedPrefill_MatchesCpu) {
  // A second prefill attends over rows already cached (the prefill kernel's "before").
  const int64_t vocab = cpu_->config().vocab_size;
  const std::vector<TokenId> prompt = Prompt(300, static_cast<int>(vocab));
  const auto first = absl::MakeConstSpan(prompt).subspan(0, 113);
  const auto rest = absl::MakeConstSpan(prompt).subspan(113);
  SF_ASSERT_OK(cpu_->Prefill(first));
  SF_ASSERT_OK(gpu_->Prefill(first));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> want, cpu_->Prefill(rest, true));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> got, gpu_->Prefill(rest, true));
  EXPECT_LE(MaxRelativeError(got, want, vocab), kTolerance);
}

TEST_P(CudaVsCpu, GreedyContinuations_AreIdentical) {
  const std::vector<TokenId> prompt = Prompt(57, static_cast<int>(cpu_->config().vocab_size));
  GenerationOptions gen;
  gen.max_new_tokens = 32;
  gen.ignore_eos = true;
  SF_ASSERT_OK_AND_ASSIGN(GenerationResult want, GenerateGreedy(*cpu_, prompt, gen));
  SF_ASSERT_OK_AND_ASSIGN(GenerationResult got, GenerateGreedy(*gpu_, prompt, gen));
  EXPECT_EQ(got.tokens, want.tokens) << "cuda: " << absl::StrJoin(got.tokens, ",")
                                     << "\ncpu:  " << absl::StrJoin(want.tokens, ",");
}

TEST_P(CudaVsCpu, CacheSyncedToHost_EqualsCpuCache) {
  const std::vector<TokenId> prompt = Prompt(45, static_cast<int>(cpu_->config().vocab_size));
  SF_ASSERT_OK(cpu_->Prefill(prompt));
  SF_ASSERT_OK(gpu_->Prefill(prompt));
  SF_ASSERT_OK(cpu_->Decode(5));
  SF_ASSERT_OK(gpu_->Decode(5));
  const KvCache& want = cpu_->cache();
  const KvCache& got = gpu_->cache();
  const int64_t d = want.head_dim();
  // Per layer and KV head: the largest difference against the scale of the CPU's rows,
  // printed so that a failure says where the two caches part.
  for (int l = 0; l < want.num_layers(); ++l) {
    for (int h = 0; h < want.num_kv_heads(); ++h) {
      ASSERT_EQ(got.length(l, h), want.length(l, h));
      double key_diff = 0, value_diff = 0, key_scale = 0, value_scale = 0;
      int64_t worst_row = -1;
      for (int64_t r = 0; r < want.length(l, h); ++r) {
        ASSERT_EQ(got.positions(l, h)[r], want.positions(l, h)[r]);
        for (int64_t i = 0; i < d; ++i) {
          const int64_t at = r * d + i;
          key_scale = std::max<double>(key_scale, std::abs(want.keys(l, h)[at]));
          value_scale = std::max<double>(value_scale, std::abs(want.values(l, h)[at]));
          key_diff = std::max<double>(key_diff, std::abs(got.keys(l, h)[at] - want.keys(l, h)[at]));
          const double v = std::abs(got.values(l, h)[at] - want.values(l, h)[at]);
          if (v > value_diff) value_diff = v, worst_row = r;
        }
      }
      std::printf(
          "  layer %d head %d: keys max diff %.3g (scale %.3g), values max diff %.3g "
          "(scale %.3g, row %lld of %lld)\n",
          l, h, key_diff, key_scale, value_diff, value_scale, static_cast<long long>(worst_row),
          static_cast<long long>(want.length(l, h)));
      EXPECT_LE(key_diff, 1e-4 * std::max(1.0, key_scale)) << "layer " << l << " head " << h;
      EXPECT_LE(value_diff, 1e-4 * std::max(1.0, value_scale)) << "layer " << l << " head " << h;
    }
  }
  // Evicting through cache() (as a caller may) reaches the device before the next step.
  for (Engine* e : {cpu_.get(), gpu_.get()}) {
    SF_ASSERT_OK(e->cache().Compact(0, 0, std::vector<int64_t>{0, 3, 7, 20, 45}));
  }
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> want_step, cpu_->Decode(9));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> got_step, gpu_->Decode(9));
  EXPECT_LE(MaxRelativeError(got_step, want_step, cpu_->config().vocab_size), kTolerance);
  EXPECT_EQ(gpu_->cache().length(0, 0), 6);
}

INSTANTIATE_TEST_SUITE_P(Models, CudaVsCpu, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& p) { return p.param.name; });

// Dense attention with every other row evicted after prefill: exercises the host path
// (Q and cache copied down, output and compacted cache uploaded).
class EvictHalfHook : public AttentionHook {
 public:
  std::string Name() const override { return "evict_half"; }
  absl::Status Attend(const AttentionCall& call, AttentionStats* stats) override {
    ++attend_calls;
    return dense_.Attend(call, stats);
  }
  absl::Status AfterPrefill(const AttentionCall& call) override {
    for (int h = 0; h < call.num_kv_heads; ++h) {
      std::vector<int64_t> keep;
      for (int64_t r = h; r < call.cache->length(call.layer, h); r += 2) keep.push_back(r);
      SF_RETURN_IF_ERROR(call.cache->Compact(call.layer, h, keep));
    }
    return absl::OkStatus();
  }
  int attend_calls = 0;

 private:
  DenseAttention dense_;
};

std::unique_ptr<Engine> MakeEngine(const std::string& dir, BackendKind backend) {
  EngineOptions o;
  o.backend = backend;
  o.num_threads = 2;
  absl::StatusOr<std::unique_ptr<Engine>> e = CreateEngine(dir, o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(*e) : nullptr;
}

TEST(CudaEngine, TestHookWithEviction_MatchesCpu) {
  const std::string dir = FreshTestDir();
  SF_ASSERT_OK(WriteTinyModel(dir, Tiny(Architecture::kQwen2)));
  auto cpu = MakeEngine(dir, BackendKind::kCpu);
  auto gpu = MakeEngine(dir, BackendKind::kCuda);
  ASSERT_TRUE(cpu && gpu);
  EvictHalfHook cpu_hook, gpu_hook;
  cpu->SetAttention(&cpu_hook, nullptr);
  gpu->SetAttention(&gpu_hook, nullptr);
  const int64_t vocab = cpu->config().vocab_size;
  const std::vector<TokenId> prompt = Prompt(77, static_cast<int>(vocab));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> want, cpu->Prefill(prompt, true));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> got, gpu->Prefill(prompt, true));
  EXPECT_LE(MaxRelativeError(got, want, vocab), kTolerance);
  EXPECT_EQ(gpu_hook.attend_calls, cpu_hook.attend_calls);
  for (int step = 0; step < 16; ++step) {
    const TokenId next = ArgMax(absl::MakeSpan(want).subspan(want.size() - vocab));
    SF_ASSERT_OK_AND_ASSIGN(want, cpu->Decode(next));
    SF_ASSERT_OK_AND_ASSIGN(got, gpu->Decode(next));
    ASSERT_LE(MaxRelativeError(got, want, vocab), kTolerance) << "decode step " << step;
  }
  for (int h = 0; h < cpu->config().num_kv_heads; ++h) {
    EXPECT_EQ(gpu->cache().length(1, h), cpu->cache().length(1, h));
    EXPECT_EQ(gpu->cache().positions(1, h)[0], cpu->cache().positions(1, h)[0]);
  }
  EXPECT_EQ(gpu->counters().decode_attention.pairs_computed,
            cpu->counters().decode_attention.pairs_computed);
}

MethodChoice Method(const std::string& name, ParamMap params) {
  MethodChoice m;
  m.name = name;
  m.params = std::move(params);
  return m;
}

// The production hooks (worker/method_hooks.h): streaming prefill and SnapKV eviction, the
// same on both backends; and dense through the hooks, which the CUDA engine keeps on the
// device.
TEST(CudaEngine, MethodHooks_MatchCpu) {
  const std::string dir = FreshTestDir();
  TinyModelOptions o = Tiny(Architecture::kLlama);
  o.num_layers = 3;
  SF_ASSERT_OK(WriteTinyModel(dir, o));
  const MethodChoice streaming =
      Method("streaming", {{"sink", int64_t{4}}, {"window", int64_t{64}}});
  const MethodChoice snapkv = Method("snapkv", {{"window", int64_t{16}},
                                                {"pool", int64_t{5}},
                                                {"keep_first", int64_t{4}},
                                                {"keep_last", int64_t{8}},
                                                {"token_capacity", int64_t{48}}});
  const MethodChoice dense = Method("dense", {});
  for (const auto& [prefill, decode] : std::vector<std::pair<MethodChoice, MethodChoice>>{
           {streaming, snapkv}, {dense, snapkv}, {streaming, dense}, {dense, dense}}) {
    SCOPED_TRACE(absl::StrCat(prefill.name, " + ", decode.name));
    auto cpu = MakeEngine(dir, BackendKind::kCpu);
    auto gpu = MakeEngine(dir, BackendKind::kCuda);
    ASSERT_TRUE(cpu && gpu);
    SF_ASSERT_OK_AND_ASSIGN(auto cpu_prefill, worker::MakePrefillHook(prefill));
    SF_ASSERT_OK_AND_ASSIGN(auto cpu_decode, worker::MakeDecodeHook(decode));
    SF_ASSERT_OK_AND_ASSIGN(auto gpu_prefill, worker::MakePrefillHook(prefill));
    SF_ASSERT_OK_AND_ASSIGN(auto gpu_decode, worker::MakeDecodeHook(decode));
    cpu->SetAttention(cpu_prefill.get(), cpu_decode.get());
    gpu->SetAttention(gpu_prefill.get(), gpu_decode.get());
    const int64_t vocab = cpu->config().vocab_size;
    const std::vector<TokenId> prompt = Prompt(301, static_cast<int>(vocab));
    SF_ASSERT_OK_AND_ASSIGN(std::vector<float> want, cpu->Prefill(prompt, true));
    SF_ASSERT_OK_AND_ASSIGN(std::vector<float> got, gpu->Prefill(prompt, true));
    EXPECT_LE(MaxRelativeError(got, want, vocab), kTolerance) << "prefill";
    for (int step = 0; step < 16; ++step) {
      const TokenId next = ArgMax(absl::MakeSpan(want).subspan(want.size() - vocab));
      SF_ASSERT_OK_AND_ASSIGN(want, cpu->Decode(next));
      SF_ASSERT_OK_AND_ASSIGN(got, gpu->Decode(next));
      ASSERT_LE(MaxRelativeError(got, want, vocab), kTolerance) << "decode step " << step;
    }
    const EngineCounters& a = gpu->counters();
    const EngineCounters& b = cpu->counters();
    EXPECT_DOUBLE_EQ(a.prefill_attention.pairs_computed, b.prefill_attention.pairs_computed);
    EXPECT_DOUBLE_EQ(a.prefill_attention.pairs_dense, b.prefill_attention.pairs_dense);
    EXPECT_DOUBLE_EQ(a.decode_attention.pairs_computed, b.decode_attention.pairs_computed);
    EXPECT_DOUBLE_EQ(a.decode_attention.pairs_dense, b.decode_attention.pairs_dense);
    EXPECT_DOUBLE_EQ(gpu_decode->estimation_flops(), cpu_decode->estimation_flops());
    for (int l = 0; l < cpu->config().num_layers; ++l) {
      for (int h = 0; h < cpu->config().num_kv_heads; ++h) {
        ASSERT_EQ(gpu->cache().length(l, h), cpu->cache().length(l, h));
        for (int64_t r = 0; r < cpu->cache().length(l, h); ++r) {
          ASSERT_EQ(gpu->cache().positions(l, h)[r], cpu->cache().positions(l, h)[r]);
        }
      }
    }
  }
}

TEST(CudaEngine, BadInputs_AreErrorsNotCrashes) {
  const std::string dir = FreshTestDir();
  SF_ASSERT_OK(WriteTinyModel(dir, Tiny(Architecture::kLlama)));
  auto gpu = MakeEngine(dir, BackendKind::kCuda);
  ASSERT_TRUE(gpu);
  EXPECT_THAT(gpu->Prefill({}), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  const TokenId bad[] = {3, 96};
  EXPECT_THAT(gpu->Prefill(bad), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  gpu->Reset();
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> a, gpu->Prefill(Prompt(40, 96)));
  gpu->Reset();
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> b, gpu->Prefill(Prompt(40, 96)));
  EXPECT_EQ(a, b);  // Reset leaves nothing behind; the kernels are deterministic
}

// --- Conformance vectors (tests/data/model), the same check as the CPU engine's.
class CudaConformance : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaConformance, LogitsAndGreedyTokens_MatchReference) {
  EngineOptions options;
  options.backend = BackendKind::kCuda;
  testing::ExpectConformance(GetParam(), options);
}

INSTANTIATE_TEST_SUITE_P(Models, CudaConformance,
                         ::testing::ValuesIn(testing::ConformanceVectors()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace sf::model
