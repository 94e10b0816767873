// The layer pipeline (EngineOptions::layer_stages) against the unsplit CUDA engine on one
// GPU: the same model cut into two or three stages on device 0 runs the same kernels on
// the same data, so its logits must equal the unsplit engine's (checked to a relative row
// error of 1e-6, the largest difference printed) and its greedy continuation must be the
// same, in float32 and bf16, over chunked prefill, decode (CUDA graphs per stage) across a
// cache growth, random weights drawn per stage, and attention methods (their device forms
// in bf16 at head_dim 128 on sm_90, the host mirror in float32). Needs a GPU (label gpu).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/gpu_memory.h"
#include "common/qwen25_shapes.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/method_hooks.h"
#include "worker/model/engine.h"
#include "worker/model/generate.h"
#include "worker/model/test_util.h"
#include "worker/model/tiny_model.h"

namespace sf::model {
namespace {

using ::sf::model::testing::FreshTestDir;
using ::sf::testing::StatusIs;
using ::testing::HasSubstr;

// Same kernels on the same inputs: equal up to nothing in practice; the bound leaves room
// only for a library choosing a different GEMM algorithm per handle.
constexpr double kRowTolerance = 1e-6;

std::vector<TokenId> Prompt(int n, int64_t vocab, int salt = 0) {
  std::vector<TokenId> t;
  for (int i = 0; i < n; ++i) t.push_back(static_cast<TokenId>((i * 37 + 11 + salt) % vocab));
  return t;
}

// Largest over rows of ||got - want|| / ||want||, and the largest absolute difference.
struct Diff {
  double row = 0;
  double abs = 0;
};
Diff Compare(const std::vector<float>& got, const std::vector<float>& want, int64_t vocab) {
  EXPECT_EQ(got.size(), want.size());
  Diff d;
  const size_t rows = std::min(got.size(), want.size()) / static_cast<size_t>(vocab);
  for (size_t r = 0; r < rows; ++r) {
    double diff = 0, norm = 1e-30;
    for (int64_t i = 0; i < vocab; ++i) {
      const double g = got[r * vocab + i], w = want[r * vocab + i];
      if (!std::isfinite(g)) return {1e9, 1e9};
      diff += (g - w) * (g - w);
      norm += w * w;
      d.abs = std::max(d.abs, std::abs(g - w));
    }
    d.row = std::max(d.row, std::sqrt(diff / norm));
  }
  return d;
}

std::vector<LayerStage> TwoStages(int64_t layers) {
  return {{0, 0, layers / 2}, {0, layers / 2, layers}};
}
std::vector<LayerStage> ThreeStages(int64_t layers) {
  return {{0, 0, 1}, {0, 1, layers - 1}, {0, layers - 1, layers}};
}

TinyModelOptions Tiny(Architecture arch, int64_t hidden, int64_t heads, int64_t kv_heads) {
  TinyModelOptions o;
  o.architecture = arch;
  o.vocab_size = 96;
  o.hidden_size = hidden;
  o.intermediate_size = 96;
  o.num_layers = 4;
  o.num_heads = heads;
  o.num_kv_heads = kv_heads;
  o.init_std = 0.2;
  return o;
}

EngineOptions Cuda(ComputeDType dtype, std::vector<LayerStage> stages = {}) {
  EngineOptions o;
  o.backend = BackendKind::kCuda;
  o.dtype = dtype;
  o.prefill_chunk_tokens = 64;  // several chunks per prompt (bf16 and float32 alike)
  o.layer_stages = std::move(stages);
  return o;
}

// Prefill of every position, then greedy decoding long enough to grow the cache past its
// first 256 rows: logits and tokens of `split` against `whole`, step by step.
void ExpectSameRun(Engine& whole, Engine& split, const std::string& label) {
  const int64_t vocab = whole.config().vocab_size;
  const std::vector<TokenId> prompt = Prompt(230, vocab, 3);
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> want, whole.Prefill(prompt, true));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> got, split.Prefill(prompt, true));
  Diff worst = Compare(got, want, vocab);
  const size_t last = want.size() - static_cast<size_t>(vocab);
  std::vector<float> want_step(want.begin() + last, want.end());
  std::vector<float> got_step(got.begin() + last, got.end());
  int equal_tokens = 0;
  constexpr int kSteps = 40;  // 230 + 40 rows: the cache grows (and graphs are recaptured)
  for (int step = 0; step < kSteps; ++step) {
    const TokenId a = ArgMax(want_step), b = ArgMax(got_step);
    EXPECT_EQ(a, b) << label << ": greedy step " << step;
    equal_tokens += a == b;
    SF_ASSERT_OK_AND_ASSIGN(want_step, whole.Decode(a));
    SF_ASSERT_OK_AND_ASSIGN(got_step, split.Decode(a));
    const Diff d = Compare(got_step, want_step, vocab);
    worst.row = std::max(worst.row, d.row);
    worst.abs = std::max(worst.abs, d.abs);
  }
  std::printf(
      "[%s] %s: prefill 230 + %d greedy steps: row error %.3g, max |diff| %.3g, "
      "tokens equal %d/%d\n",
      label.c_str(), split.BackendName().c_str(), kSteps, worst.row, worst.abs, equal_tokens,
      kSteps);
  EXPECT_LE(worst.row, kRowTolerance) << label;
  EXPECT_EQ(split.position(), whole.position());
  EXPECT_EQ(split.counters().tokens_prefilled, whole.counters().tokens_prefilled);
  EXPECT_EQ(split.counters().tokens_decoded, whole.counters().tokens_decoded);
  EXPECT_DOUBLE_EQ(split.counters().prefill_attention.pairs_computed,
                   whole.counters().prefill_attention.pairs_computed);
  EXPECT_DOUBLE_EQ(split.counters().decode_attention.pairs_computed,
                   whole.counters().decode_attention.pairs_computed);
  EXPECT_EQ(split.counters().prefill_backend, whole.counters().prefill_backend);
  EXPECT_EQ(split.counters().decode_backend, whole.counters().decode_backend);
  EXPECT_EQ(split.counters().attention_kernels, whole.counters().attention_kernels);
}

struct Case {
  std::string name;
  TinyModelOptions model;
  ComputeDType dtype;
};

class PipelineVsWhole : public ::testing::TestWithParam<Case> {};

TEST_P(PipelineVsWhole, TwoAndThreeStagesOnDevice0_SameLogitsAndContinuation) {
  const Case& c = GetParam();
  const std::string dir = FreshTestDir();
  SF_ASSERT_OK(WriteTinyModel(dir, c.model));
  for (const auto& stages : {TwoStages(c.model.num_layers), ThreeStages(c.model.num_layers)}) {
    SF_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Engine> whole, CreateEngine(dir, Cuda(c.dtype)));
    SF_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Engine> split,
                            CreateEngine(dir, Cuda(c.dtype, stages)));
    ExpectSameRun(*whole, *split, absl::StrCat(c.name, " ", DescribeStages(stages)));
    // Reset empties every stage: the same prompt gives the same logits again.
    whole->Reset();
    split->Reset();
    const std::vector<TokenId> prompt = Prompt(20, c.model.vocab_size, 1);
    SF_ASSERT_OK_AND_ASSIGN(std::vector<float> want, whole->Prefill(prompt));
    SF_ASSERT_OK_AND_ASSIGN(std::vector<float> got, split->Prefill(prompt));
    EXPECT_LE(Compare(got, want, c.model.vocab_size).row, kRowTolerance);
    // The host mirror of the cache: every layer's rows, whichever stage holds them.
    KvCache& a = whole->cache();
    KvCache& b = split->cache();
    for (int l = 0; l < c.model.num_layers; ++l) {
      for (int h = 0; h < c.model.num_kv_heads; ++h) {
        ASSERT_EQ(b.length(l, h), a.length(l, h)) << "layer " << l;
        const int64_t n = a.length(l, h) * (c.model.hidden_size / c.model.num_heads);
        EXPECT_TRUE(std::equal(a.keys(l, h), a.keys(l, h) + n, b.keys(l, h))) << "layer " << l;
      }
    }
  }
}

std::vector<Case> Cases() {
  TinyModelOptions qwen = Tiny(Architecture::kQwen2, 64, 4, 2);  // q/k/v biases
  qwen.dtype = DType::kF32;
  TinyModelOptions tied = Tiny(Architecture::kLlama, 64, 4, 2);
  tied.tie_word_embeddings = true;  // the last stage holds the embeddings as its lm_head
  TinyModelOptions wide = Tiny(Architecture::kLlama, 256, 2, 1);  // head_dim 128
  return {{"f32_qwen2_bias", qwen, ComputeDType::kFloat32},
          {"f32_llama_tied", tied, ComputeDType::kFloat32},
          {"bf16_qwen2_bias", qwen, ComputeDType::kBfloat16},
          {"bf16_llama_tied", tied, ComputeDType::kBfloat16},
          {"bf16_head_dim_128", wide, ComputeDType::kBfloat16}};
}

INSTANTIATE_TEST_SUITE_P(Models, PipelineVsWhole, ::testing::ValuesIn(Cases()),
                         [](const auto& param) { return param.param.name; });

// Random weights are drawn per tensor in the whole model's order: each stage skips the
// draws of the layers it does not hold, so the split model holds the same weights.
TEST(PipelineTest, RandomWeights_SameAsUnsplit) {
  ModelConfig config;
  config.architecture = Architecture::kQwen2;
  config.vocab_size = 128;
  config.hidden_size = 256;
  config.intermediate_size = 384;
  config.num_layers = 6;
  config.num_heads = 4;
  config.num_kv_heads = 2;
  config.head_dim = 64;
  config.qkv_bias = true;
  config.max_position_embeddings = 4096;
  config.rope_theta = 1e6;
  SF_ASSERT_OK_AND_ASSIGN(auto whole, CreateCudaEngineWithRandomWeights(
                                          config, Cuda(ComputeDType::kBfloat16), 7, 0.05f));
  SF_ASSERT_OK_AND_ASSIGN(
      auto split,
      CreateCudaEngineWithRandomWeights(
          config, Cuda(ComputeDType::kBfloat16, {{0, 0, 2}, {0, 2, 5}, {0, 5, 6}}), 7, 0.05f));
  ExpectSameRun(*whole, *split, "random bf16 qwen2 [0,2) [2,5) [5,6)");
}

// Qwen2.5-72B's shape with `layers` of its 80 layers.
ModelConfig Qwen72BShape(int64_t layers) { return Qwen25Shape("qwen2.5-72b", layers).value(); }

EngineOptions LongContext(int64_t length) {
  EngineOptions o = Cuda(ComputeDType::kBfloat16);
  o.prefill_chunk_tokens = 0;  // the default, 8192
  o.reserve_tokens = length + 16;
  return o;
}

// Prefills `length` tokens and decodes 8 greedy steps on `engine`, and on `reference` too
// when given (the same steps, its logits compared); prints the timings under `label`.
void RunLong(Engine& engine, Engine* reference, int64_t length, const std::string& label) {
  const int64_t vocab = engine.config().vocab_size;
  const std::vector<TokenId> prompt = Prompt(static_cast<int>(length), vocab, 4);
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> got, engine.Prefill(prompt));
  std::vector<float> want;
  if (reference != nullptr) {
    SF_ASSERT_OK_AND_ASSIGN(want, reference->Prefill(prompt));
  }
  Diff worst = reference != nullptr ? Compare(got, want, vocab) : Diff();
  for (int step = 0; step < 8; ++step) {
    const TokenId next = ArgMax(reference != nullptr ? want : got);
    if (reference != nullptr) {
      EXPECT_EQ(ArgMax(got), next) << label << " step " << step;
      SF_ASSERT_OK_AND_ASSIGN(want, reference->Decode(next));
    }
    SF_ASSERT_OK_AND_ASSIGN(got, engine.Decode(next));
    if (reference != nullptr) worst.row = std::max(worst.row, Compare(got, want, vocab).row);
  }
  const EngineCounters& b = engine.counters();
  std::string line = absl::StrCat(
      "[", label, ", ", length, " tokens] ", engine.BackendName(), ": prefill ", b.prefill_seconds,
      " s, decode ", 1e3 * b.decode_seconds / std::max<int64_t>(1, b.tokens_decoded), " ms/token");
  if (reference != nullptr) {
    const EngineCounters& a = reference->counters();
    absl::StrAppend(&line, "; unsplit: prefill ", a.prefill_seconds, " s, decode ",
                    1e3 * a.decode_seconds / std::max<int64_t>(1, a.tokens_decoded),
                    " ms/token; row error ", worst.row);
    EXPECT_LE(worst.row, kRowTolerance) << label;
  }
  std::printf("%s\n", line.c_str());
}

// The 4-layer cut of Qwen2.5-72B's shape, random bf16 weights, 2 stages on device 0 against
// the unsplit engine at 32K and 128K tokens of prefill (chunks of 8192, Hopper kernels)
// and 8 decode steps, both timed.
TEST(PipelineTest, Qwen72BShapeCutTo4Layers_LongPrefillAndDecodeSameAsUnsplit) {
  const ModelConfig config = Qwen72BShape(4);
  for (int64_t length : {int64_t{32768}, int64_t{131072}}) {
    EngineOptions split_options = LongContext(length);
    split_options.layer_stages = TwoStages(config.num_layers);
    SF_ASSERT_OK_AND_ASSIGN(
        auto whole, CreateCudaEngineWithRandomWeights(config, LongContext(length), 3, 0.02f));
    SF_ASSERT_OK_AND_ASSIGN(auto split,
                            CreateCudaEngineWithRandomWeights(config, split_options, 3, 0.02f));
    RunLong(*split, whole.get(), length, "qwen2.5-72b shape, 4 layers, 2 stages on GPU 0");
  }
}

int DeviceCount() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

// On a host with 2 or more GPUs (skipped otherwise): the same 4-layer cut with one stage
// per GPU against the unsplit engine on GPU 0 (the copies between GPUs, peer or through
// the host), at 32K and 128K.
TEST(PipelineTest, MultiGpu_Qwen72BShapeCutOverEveryGpu_SameAsOneGpu) {
  const int gpus = DeviceCount();
  if (gpus < 2) GTEST_SKIP() << "needs 2 or more GPUs; " << gpus << " visible";
  const ModelConfig config = Qwen72BShape(4);
  const int stages = std::min<int>(gpus, 4);
  std::vector<LayerStage> cut;
  for (int i = 0; i < stages; ++i) {
    cut.push_back({i, config.num_layers * i / stages, config.num_layers * (i + 1) / stages});
  }
  for (int64_t length : {int64_t{32768}, int64_t{131072}}) {
    EngineOptions split_options = LongContext(length);
    split_options.layer_stages = cut;
    SF_ASSERT_OK_AND_ASSIGN(
        auto whole, CreateCudaEngineWithRandomWeights(config, LongContext(length), 3, 0.02f));
    SF_ASSERT_OK_AND_ASSIGN(auto split,
                            CreateCudaEngineWithRandomWeights(config, split_options, 3, 0.02f));
    RunLong(*split, whole.get(), length,
            absl::StrCat("qwen2.5-72b shape, 4 layers, ", stages, " GPUs"));
  }
}

// With SF_PIPELINE_72B=1 on a multi-GPU host: the whole 80-layer Qwen2.5-72B shape, random
// bf16 weights, cut by PlanLayerStages over what each GPU has free (less 1 GiB), prefilling
// 32K and 128K tokens and decoding 8 steps, timed (no single GPU holds it to compare with).
TEST(PipelineTest, MultiGpu_Qwen72BWholeModel_PrefillAndDecode) {
  const char* flag = std::getenv("SF_PIPELINE_72B");
  if (flag == nullptr || std::string(flag) != "1") GTEST_SKIP() << "set SF_PIPELINE_72B=1";
  const ModelConfig config = Qwen72BShape(80);
  for (int64_t length : {int64_t{32768}, int64_t{131072}}) {
    EngineOptions options = LongContext(length);
    std::vector<int64_t> free_bytes;
    for (int d = 0; d < DeviceCount(); ++d) {
      size_t free = 0, total = 0;
      ASSERT_EQ(cudaSetDevice(d), cudaSuccess);
      ASSERT_EQ(cudaMemGetInfo(&free, &total), cudaSuccess);
      free_bytes.push_back(static_cast<int64_t>(free) - (int64_t{1} << 30));
    }
    SF_ASSERT_OK_AND_ASSIGN(
        options.layer_stages,
        PlanLayerStages(ProfileGpuMemory(config, GpuMemorySettingsFor(options), length + 16),
                        free_bytes));
    std::printf("[qwen2.5-72b, 80 layers, %lld tokens] stages %s\n", static_cast<long long>(length),
                DescribeStages(options.layer_stages).c_str());
    SF_ASSERT_OK_AND_ASSIGN(auto engine,
                            CreateCudaEngineWithRandomWeights(config, options, 3, 0.02f));
    RunLong(*engine, nullptr, length, "qwen2.5-72b, 80 layers");
  }
}

MethodChoice Method(const std::string& name, ParamMap params) {
  MethodChoice m;
  m.name = name;
  m.params = std::move(params);
  return m;
}

// A prefill method and an evicting decode method through the pipeline: on the device in
// bf16 at head_dim 128 (sm_90), on the host mirror in float32; each engine has its own
// hooks. Greedy continuations, logits and measured pairs equal the unsplit engine's.
TEST(PipelineTest, MethodHooks_SameAsUnsplit) {
  const std::string dir = FreshTestDir();
  TinyModelOptions model = Tiny(Architecture::kLlama, 256, 2, 1);
  model.vocab_size = 128;
  SF_ASSERT_OK(WriteTinyModel(dir, model));
  const MethodChoice prefill = Method("streaming", {{"sink", int64_t{4}}, {"window", int64_t{64}}});
  const MethodChoice decode = Method("snapkv", {{"window", int64_t{32}},
                                                {"pool", int64_t{5}},
                                                {"keep_first", int64_t{4}},
                                                {"keep_last", int64_t{16}},
                                                {"token_capacity", int64_t{96}}});
  for (ComputeDType dtype : {ComputeDType::kBfloat16, ComputeDType::kFloat32}) {
    SF_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Engine> whole, CreateEngine(dir, Cuda(dtype)));
    SF_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Engine> split,
                            CreateEngine(dir, Cuda(dtype, TwoStages(model.num_layers))));
    SF_ASSERT_OK_AND_ASSIGN(auto whole_prefill, worker::MakePrefillHook(prefill));
    SF_ASSERT_OK_AND_ASSIGN(auto whole_decode, worker::MakeDecodeHook(decode));
    SF_ASSERT_OK_AND_ASSIGN(auto split_prefill, worker::MakePrefillHook(prefill));
    SF_ASSERT_OK_AND_ASSIGN(auto split_decode, worker::MakeDecodeHook(decode));
    whole->SetAttention(whole_prefill.get(), whole_decode.get());
    split->SetAttention(split_prefill.get(), split_decode.get());
    const std::vector<TokenId> prompt = Prompt(300, model.vocab_size, 2);
    GenerationOptions g;
    g.max_new_tokens = 24;
    g.ignore_eos = true;
    SF_ASSERT_OK_AND_ASSIGN(GenerationResult want, GenerateGreedy(*whole, prompt, g));
    SF_ASSERT_OK_AND_ASSIGN(GenerationResult got, GenerateGreedy(*split, prompt, g));
    EXPECT_EQ(got.tokens, want.tokens) << ComputeDTypeName(dtype);
    const EngineCounters& a = whole->counters();
    const EngineCounters& b = split->counters();
    EXPECT_DOUBLE_EQ(b.prefill_attention.pairs_computed, a.prefill_attention.pairs_computed);
    EXPECT_DOUBLE_EQ(b.decode_attention.pairs_computed, a.decode_attention.pairs_computed);
    EXPECT_EQ(b.prefill_backend, a.prefill_backend);
    EXPECT_EQ(b.decode_backend, a.decode_backend);
    // One more step from the same state: the logits themselves.
    SF_ASSERT_OK_AND_ASSIGN(std::vector<float> wl, whole->Decode(want.tokens.back()));
    SF_ASSERT_OK_AND_ASSIGN(std::vector<float> gl, split->Decode(want.tokens.back()));
    const Diff d = Compare(gl, wl, model.vocab_size);
    std::printf(
        "[methods %s] streaming prefill + snapkv decode, %s: prefill on %s, decode on %s, "
        "density %.4f / %.4f; tokens %s; next-step row error %.3g\n",
        ComputeDTypeName(dtype), split->BackendName().c_str(),
        AttentionBackendName(b.prefill_backend), AttentionBackendName(b.decode_backend),
        b.prefill_attention.pairs_computed / std::max(1.0, b.prefill_attention.pairs_dense),
        b.decode_attention.pairs_computed / std::max(1.0, b.decode_attention.pairs_dense),
        got.tokens == want.tokens ? "equal" : "DIFFER", d.row);
    EXPECT_LE(d.row, kRowTolerance);
  }
}

TEST(PipelineTest, BadStages_InvalidArgumentNamingTheStage) {
  const std::string dir = FreshTestDir();
  SF_ASSERT_OK(WriteTinyModel(dir, Tiny(Architecture::kLlama, 64, 4, 2)));
  const std::vector<std::pair<std::vector<LayerStage>, std::string>> bad = {
      {{{0, 0, 2}, {0, 3, 4}}, "layer_stages[1] holds layers [3, 4)"},
      {{{0, 0, 2}, {0, 2, 2}, {0, 2, 4}}, "layer_stages[1]"},
      {{{0, 0, 2}}, "end at layer 2"},
      {{{0, 0, 2}, {0, 2, 5}}, "layer_stages[1]"},
      {{{0, 0, 2}, {4096, 2, 4}}, "names GPU 4096"},
  };
  for (const auto& [stages, message] : bad) {
    EXPECT_THAT(CreateEngine(dir, Cuda(ComputeDType::kFloat32, stages)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)))
        << DescribeStages(stages);
  }
}

}  // namespace
}  // namespace sf::model
