#include "worker/model/engine.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/model/generate.h"
#include "worker/model/safetensors.h"
#include "worker/model/test_util.h"
#include "worker/model/tiny_model.h"

namespace sf::model {
namespace {

using ::sf::model::testing::FreshTestDir;
using ::sf::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

// A plain double-precision transformer written from the Hugging Face modeling code,
// independent of the engine (it shares only the checkpoint reader and ComputeRope,
// which have their own tests). Returns logits of every position, [n][vocab].
std::vector<double> ReferenceLogits(const std::string& dir, const std::vector<TokenId>& tokens) {
  absl::StatusOr<ModelConfig> cfg = LoadModelConfig(dir);
  SF_CHECK(cfg.ok()) << cfg.status();
  const ModelConfig& c = *cfg;
  auto ckpt = Checkpoint::Open(dir);
  SF_CHECK(ckpt.ok()) << ckpt.status();
  auto W = [&](const std::string& name) {
    auto it = (*ckpt)->TensorNames();
    (void)it;
    absl::StatusOr<TensorView> v = (*ckpt)->Get(name);
    SF_CHECK(v.ok()) << v.status();
    std::vector<float> f(static_cast<size_t>(v->NumElements()));
    ConvertToFloat(v->info->dtype, v->data, f.size(), f.data());
    return std::vector<double>(f.begin(), f.end());
  };
  const int64_t n = static_cast<int64_t>(tokens.size()), H = c.hidden_size, d = c.head_dim;
  const int64_t Hq = c.num_heads, Hkv = c.num_kv_heads, I = c.intermediate_size, V = c.vocab_size;
  using Mat = std::vector<std::vector<double>>;
  auto linear = [](const Mat& x, const std::vector<double>& w, const std::vector<double>* b,
                   int64_t out) {
    const int64_t in = static_cast<int64_t>(x[0].size());
    Mat y(x.size(), std::vector<double>(static_cast<size_t>(out)));
    for (size_t t = 0; t < x.size(); ++t) {
      for (int64_t o = 0; o < out; ++o) {
        double s = b ? (*b)[static_cast<size_t>(o)] : 0.0;
        for (int64_t i = 0; i < in; ++i) s += x[t][i] * w[o * in + i];
        y[t][o] = s;
      }
    }
    return y;
  };
  auto rmsnorm = [&](const Mat& x, const std::vector<double>& w) {
    Mat y = x;
    for (auto& row : y) {
      double ss = 0;
      for (double v : row) ss += v * v;
      const double inv = 1.0 / std::sqrt(ss / H + c.rms_norm_eps);
      for (int64_t i = 0; i < H; ++i) row[i] = w[i] * row[i] * inv;
    }
    return y;
  };
  absl::StatusOr<RopeTable> rope = ComputeRope(c);
  SF_CHECK(rope.ok());
  auto apply_rope = [&](Mat& x, int64_t heads) {
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t h = 0; h < heads; ++h) {
        for (int64_t i = 0; i < d / 2; ++i) {
          const double ang = static_cast<double>(t) * rope->inv_freq[i];
          const double cs = std::cos(ang) * rope->attention_scaling;
          const double sn = std::sin(ang) * rope->attention_scaling;
          double& a = x[t][h * d + i];
          double& b = x[t][h * d + i + d / 2];
          const double a0 = a, b0 = b;
          a = a0 * cs - b0 * sn;
          b = b0 * cs + a0 * sn;
        }
      }
    }
  };
  const std::vector<double> embed = W("model.embed_tokens.weight");
  Mat x(static_cast<size_t>(n), std::vector<double>(static_cast<size_t>(H)));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < H; ++i) x[t][i] = embed[tokens[t] * H + i];
  }
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    Mat h = rmsnorm(x, W(p + "input_layernorm.weight"));
    std::vector<double> bq, bk, bv;
    if (c.qkv_bias) {
      bq = W(p + "self_attn.q_proj.bias");
      bk = W(p + "self_attn.k_proj.bias");
      bv = W(p + "self_attn.v_proj.bias");
    }
    Mat q = linear(h, W(p + "self_attn.q_proj.weight"), c.qkv_bias ? &bq : nullptr, Hq * d);
    Mat k = linear(h, W(p + "self_attn.k_proj.weight"), c.qkv_bias ? &bk : nullptr, Hkv * d);
    Mat v = linear(h, W(p + "self_attn.v_proj.weight"), c.qkv_bias ? &bv : nullptr, Hkv * d);
    apply_rope(q, Hq);
    apply_rope(k, Hkv);
    Mat attn(static_cast<size_t>(n), std::vector<double>(static_cast<size_t>(Hq * d)));
    for (int64_t qh = 0; qh < Hq; ++qh) {
      const int64_t kh = qh / (Hq / Hkv);
      for (int64_t t = 0; t < n; ++t) {
        std::vector<double> s(static_cast<size_t>(t + 1));
        double mx = -1e300;
        for (int64_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (int64_t i = 0; i < d; ++i) dot += q[t][qh * d + i] * k[j][kh * d + i];
          s[j] = dot / std::sqrt(static_cast<double>(d));
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t j = 0; j <= t; ++j) {
          for (int64_t i = 0; i < d; ++i) attn[t][qh * d + i] += s[j] / sum * v[j][kh * d + i];
        }
      }
    }
    Mat o = linear(attn, W(p + "self_attn.o_proj.weight"), nullptr, H);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t i = 0; i < H; ++i) x[t][i] += o[t][i];
    }
    h = rmsnorm(x, W(p + "post_attention_layernorm.weight"));
    Mat g = linear(h, W(p + "mlp.gate_proj.weight"), nullptr, I);
    Mat u = linear(h, W(p + "mlp.up_proj.weight"), nullptr, I);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t i = 0; i < I; ++i) g[t][i] = g[t][i] / (1 + std::exp(-g[t][i])) * u[t][i];
    }
    Mat dn = linear(g, W(p + "mlp.down_proj.weight"), nullptr, H);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t i = 0; i < H; ++i) x[t][i] += dn[t][i];
    }
  }
  Mat h = rmsnorm(x, W("model.norm.weight"));
  Mat logits = linear(h, c.tie_word_embeddings ? embed : W("lm_head.weight"), nullptr, V);
  std::vector<double> out;
  for (const auto& row : logits) out.insert(out.end(), row.begin(), row.end());
  return out;
}

// Max over rows of max|a - b| / max|b| (each row's error relative to its scale).
double RowRelativeError(const std::vector<float>& a, const std::vector<double>& b, int64_t vocab) {
  double worst = 0;
  for (size_t r = 0; r * vocab < b.size(); ++r) {
    double scale = 1e-12, err = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      scale = std::max(scale, std::abs(b[r * vocab + i]));
      err = std::max(err, std::abs(a[r * vocab + i] - b[r * vocab + i]));
    }
    worst = std::max(worst, err / scale);
  }
  return worst;
}

std::vector<TokenId> Prompt(int n, int vocab) {
  std::vector<TokenId> t;
  for (int i = 0; i < n; ++i) t.push_back(static_cast<TokenId>((i * 37 + 11) % vocab));
  return t;
}

TinyModelOptions Tiny(Architecture arch, DType dtype = DType::kF32) {
  TinyModelOptions o;
  o.architecture = arch;
  o.dtype = dtype;
  o.vocab_size = 96;
  o.hidden_size = 32;
  o.intermediate_size = 48;
  o.num_heads = 4;
  o.num_kv_heads = 2;
  o.init_std = 0.2;
  return o;
}

struct ArchCase {
  std::string name;
  TinyModelOptions options;
};

std::vector<ArchCase> ArchCases() {
  std::vector<ArchCase> cases;
  cases.push_back({"llama_gqa", Tiny(Architecture::kLlama)});
  TinyModelOptions qwen = Tiny(Architecture::kQwen2);
  qwen.tie_word_embeddings = true;
  qwen.rope.type = RopeType::kYarn;
  qwen.rope.factor = 4;
  qwen.rope.original_max_position_embeddings = 16;
  qwen.transformers5_config = true;
  cases.push_back({"qwen2_bias_tied_yarn", qwen});
  TinyModelOptions mistral = Tiny(Architecture::kMistral, DType::kBF16);
  mistral.num_kv_heads = 4;
  mistral.rope.type = RopeType::kLlama3;
  mistral.rope.factor = 8;
  mistral.rope.original_max_position_embeddings = 32;
  cases.push_back({"mistral_mha_llama3_bf16", mistral});
  TinyModelOptions linear = Tiny(Architecture::kLlama, DType::kF16);
  linear.num_kv_heads = 1;
  linear.head_dim = 16;  // head_dim * heads != hidden
  linear.rope.type = RopeType::kLinear;
  linear.rope.factor = 2;
  cases.push_back({"llama_mqa_linear_f16_headdim", linear});
  return cases;
}

TEST(CpuEngine, PrefillLogits_MatchDoubleReference) {
  for (const ArchCase& ac : ArchCases()) {
    SCOPED_TRACE(ac.name);
    const std::string dir = FreshTestDir(ac.name);
    SF_ASSERT_OK(WriteTinyModel(dir, ac.options));
    EngineOptions eo;
    eo.num_threads = 2;
    SF_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Engine> engine, CreateEngine(dir, eo));
    // 70 tokens: more than one 64-query attention block.
    const std::vector<TokenId> prompt = Prompt(70, 96);
    SF_ASSERT_OK_AND_ASSIGN(std::vector<float> logits, engine->Prefill(prompt, true));
    const std::vector<double> ref = ReferenceLogits(dir, prompt);
    ASSERT_EQ(logits.size(), ref.size());
    EXPECT_LT(RowRelativeError(logits, ref, 96), 1e-4);
    EXPECT_EQ(engine->position(), 70);
    EXPECT_EQ(engine->counters().tokens_prefilled, 70);
  }
}

TEST(CpuEngine, DecodeWithCache_MatchesFullPrefill) {
  for (const ArchCase& ac : ArchCases()) {
    SCOPED_TRACE(ac.name);
    const std::string dir = FreshTestDir(ac.name);
    SF_ASSERT_OK(WriteTinyModel(dir, ac.options));
    SF_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Engine> engine, CreateEngine(dir, {}));
    const std::vector<TokenId> prompt = Prompt(40, 96);
    SF_ASSERT_OK_AND_ASSIGN(std::vector<float> full, engine->Prefill(prompt, true));
    engine->Reset();
    // 30 tokens in two chunks, then 10 decode steps.
    SF_ASSERT_OK(engine->Prefill(absl::MakeConstSpan(prompt).subspan(0, 20)));
    SF_ASSERT_OK(engine->Prefill(absl::MakeConstSpan(prompt).subspan(20, 10)));
    for (int i = 30; i < 40; ++i) {
      SF_ASSERT_OK_AND_ASSIGN(std::vector<float> step, engine->Decode(prompt[i]));
      const std::vector<double> want(full.begin() + i * 96, full.begin() + (i + 1) * 96);
      EXPECT_LT(RowRelativeError(step, want, 96), 1e-5) << "position " << i;
    }
    EXPECT_EQ(engine->cache().length(1, 0), 40);
  }
}

TEST(CpuEngine, LayerStages_InvalidArgument) {
  const std::string dir = FreshTestDir();
  SF_ASSERT_OK(WriteTinyModel(dir, Tiny(Architecture::kLlama)));
  EngineOptions options;
  options.layer_stages = {{0, 0, 1}, {0, 1, 2}};
  EXPECT_THAT(CreateEngine(dir, options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("layer_stages")));
}

TEST(CpuEngine, ThreadCount_DoesNotChangeResults) {
  const std::string dir = FreshTestDir();
  SF_ASSERT_OK(WriteTinyModel(dir, Tiny(Architecture::kLlama)));
  EngineOptions one, three;
  one.num_threads = 1;
  three.num_threads = 3;
  SF_ASSERT_OK_AND_ASSIGN(auto e1, CreateEngine(dir, one));
  SF_ASSERT_OK_AND_ASSIGN(auto e3, CreateEngine(dir, three));
  const std::vector<TokenId> prompt = Prompt(150, 96);
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> a, e1->Prefill(prompt, true));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> b, e3->Prefill(prompt, true));
  EXPECT_LT(RowRelativeError(a, std::vector<double>(b.begin(), b.end()), 96), 1e-5);
}

TEST(CpuEngine, ShardedAndSingleFile_GiveTheSameLogits) {
  const std::string single = FreshTestDir("single"), sharded = FreshTestDir("sharded");
  TinyModelOptions o = Tiny(Architecture::kQwen2);
  SF_ASSERT_OK(WriteTinyModel(single, o));
  o.num_shards = 4;
  SF_ASSERT_OK(WriteTinyModel(sharded, o));
  SF_ASSERT_OK_AND_ASSIGN(auto a, CreateEngine(single, {}));
  SF_ASSERT_OK_AND_ASSIGN(auto b, CreateEngine(sharded, {}));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> la, a->Prefill(Prompt(9, 96)));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> lb, b->Prefill(Prompt(9, 96)));
  EXPECT_EQ(la, lb);
}

TEST(CpuEngine, BadInputs_AreErrorsNotCrashes) {
  const std::string dir = FreshTestDir();
  SF_ASSERT_OK(WriteTinyModel(dir, Tiny(Architecture::kLlama)));
  SF_ASSERT_OK_AND_ASSIGN(auto engine, CreateEngine(dir, {}));
  EXPECT_THAT(engine->Prefill(std::vector<TokenId>{1, 96}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("token 96")));
  EXPECT_THAT(engine->Prefill(std::vector<TokenId>{}),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  EngineOptions cuda;
  cuda.backend = BackendKind::kCuda;
  // Without CUDA in the build: Unimplemented; with it but no GPU: FailedPrecondition; both
  // point at the cpu backend. (cuda_engine_gpu_test covers a machine with a GPU.)
  absl::StatusOr<std::unique_ptr<Engine>> gpu = CreateEngine(dir, cuda);
  if (!gpu.ok()) {
    EXPECT_THAT(gpu.status().code(), ::testing::AnyOf(absl::StatusCode::kUnimplemented,
                                                      absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(gpu.status().message(), HasSubstr("cpu backend"));
  }
}

TEST(CpuEngine, MissingTensor_IsNamed) {
  const std::string dir = FreshTestDir();
  SF_ASSERT_OK(WriteTinyModel(dir, Tiny(Architecture::kLlama)));
  // Rewrite the checkpoint without one tensor.
  SF_ASSERT_OK_AND_ASSIGN(auto ckpt, Checkpoint::Open(dir));
  std::vector<TensorToWrite> keep;
  for (const std::string& name : ckpt->TensorNames()) {
    if (name == "model.layers.1.mlp.up_proj.weight") continue;
    SF_ASSERT_OK_AND_ASSIGN(TensorView v, ckpt->Get(name));
    keep.push_back({name, v.info->dtype, v.info->shape,
                    std::string(static_cast<const char*>(v.data), v.info->end - v.info->begin)});
  }
  ckpt.reset();
  SF_ASSERT_OK_AND_ASSIGN(std::string bytes, SerializeSafetensors(keep));
  SF_ASSERT_OK(WriteFileAtomically(dir + "/model.safetensors", bytes));
  EXPECT_THAT(CreateEngine(dir, {}), StatusIs(absl::StatusCode::kNotFound,
                                              HasSubstr("model.layers.1.mlp.up_proj.weight")));
}

TEST(CpuEngine, ConfigDisagreeingWithWeights_NamesTensorAndShapes) {
  const std::string dir = FreshTestDir();
  TinyModelOptions o = Tiny(Architecture::kLlama);
  SF_ASSERT_OK(WriteTinyModel(dir, o));
  o.intermediate_size = 50;
  std::ofstream(dir + "/config.json") << TinyModelConfigJson(o);
  EXPECT_THAT(CreateEngine(dir, {}), StatusIs(absl::StatusCode::kInvalidArgument,
                                              AllOf(HasSubstr("gate_proj"), HasSubstr("[48, 32]"),
                                                    HasSubstr("[50, 32]"))));
}

TEST(CpuEngine, SlidingWindow_RefusesLongerSequences) {
  const std::string dir = FreshTestDir();
  TinyModelOptions o = Tiny(Architecture::kMistral);
  SF_ASSERT_OK(WriteTinyModel(dir, o));
  std::string config = TinyModelConfigJson(o);
  config.replace(config.find("\"sliding_window\": null"), 22, "\"sliding_window\": 8");
  std::ofstream(dir + "/config.json") << config;
  SF_ASSERT_OK_AND_ASSIGN(auto engine, CreateEngine(dir, {}));
  SF_EXPECT_OK(engine->Prefill(Prompt(8, 96)));
  EXPECT_THAT(engine->Decode(1),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("sliding_window")));
}

TEST(Generate, Greedy_StopsOnEosAndHonoursMaxNewTokens) {
  const std::string dir = FreshTestDir();
  SF_ASSERT_OK(WriteTinyModel(dir, Tiny(Architecture::kLlama)));
  SF_ASSERT_OK_AND_ASSIGN(auto engine, CreateEngine(dir, {}));
  const std::vector<TokenId> prompt = Prompt(12, 96);
  GenerationOptions free_run;
  free_run.max_new_tokens = 12;
  free_run.ignore_eos = true;
  SF_ASSERT_OK_AND_ASSIGN(GenerationResult all, GenerateGreedy(*engine, prompt, free_run));
  ASSERT_EQ(all.tokens.size(), 12u);
  EXPECT_FALSE(all.stopped);
  // Greedy tokens are the argmax of a full prefill over prompt + generated prefix.
  std::vector<TokenId> seq = prompt;
  seq.insert(seq.end(), all.tokens.begin(), all.tokens.begin() + 5);
  engine->Reset();
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> last, engine->Prefill(seq));
  EXPECT_EQ(ArgMax(last), all.tokens[5]);
  // Making the 4th generated token a stop token ends generation there.
  GenerationOptions stop;
  stop.max_new_tokens = 12;
  stop.stop_tokens = {all.tokens[3]};
  SF_ASSERT_OK_AND_ASSIGN(GenerationResult cut, GenerateGreedy(*engine, prompt, stop));
  const size_t first = static_cast<size_t>(
      std::find(all.tokens.begin(), all.tokens.end(), all.tokens[3]) - all.tokens.begin());
  EXPECT_TRUE(cut.stopped);
  EXPECT_EQ(cut.tokens, std::vector<TokenId>(all.tokens.begin(), all.tokens.begin() + first + 1));
  GenerationOptions none;
  none.max_new_tokens = 0;
  SF_ASSERT_OK_AND_ASSIGN(GenerationResult empty, GenerateGreedy(*engine, prompt, none));
  EXPECT_TRUE(empty.tokens.empty());
}

// A hook that delegates to dense attention, records calls, and after prefill keeps
// only the first half of every head's rows (an eviction method's shape).
class EvictHalfHook : public AttentionHook {
 public:
  std::string Name() const override { return "evict_half"; }
  absl::Status Attend(const AttentionCall& call, AttentionStats* stats) override {
    ++attend_calls;
    return dense_.Attend(call, stats);
  }
  absl::Status AfterPrefill(const AttentionCall& call) override {
    ++after_prefill_calls;
    for (int h = 0; h < call.num_kv_heads; ++h) {
      std::vector<int64_t> keep;
      for (int64_t s = 0; s < call.cache->length(call.layer, h) / 2; ++s) keep.push_back(s);
      SF_RETURN_IF_ERROR(call.cache->Compact(call.layer, h, keep));
    }
    return absl::OkStatus();
  }
  int attend_calls = 0;
  int after_prefill_calls = 0;

 private:
  DenseAttention dense_;
};

TEST(CpuEngine, AttentionHook_RunsPerLayerAndCanEvict) {
  const std::string dir = FreshTestDir();
  SF_ASSERT_OK(WriteTinyModel(dir, Tiny(Architecture::kLlama)));
  SF_ASSERT_OK_AND_ASSIGN(auto engine, CreateEngine(dir, {}));
  EvictHalfHook hook;
  engine->SetAttention(&hook, nullptr);
  SF_ASSERT_OK(engine->Prefill(Prompt(20, 96)));
  EXPECT_EQ(hook.attend_calls, 2);
  EXPECT_EQ(hook.after_prefill_calls, 2);
  EXPECT_EQ(engine->cache().length(0, 1), 10);
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> step, engine->Decode(3));
  EXPECT_EQ(engine->cache().length(0, 1), 11);
  EXPECT_EQ(engine->cache().positions(0, 1)[10], 20);  // position keeps counting
  EXPECT_EQ(engine->position(), 21);
  EXPECT_EQ(hook.attend_calls, 2);  // decode went to dense
  // The decode step attended over 11 rows per head: 4 heads x 11 pairs x 2 layers.
  EXPECT_EQ(engine->counters().decode_attention.pairs_computed, 4 * 11 * 2);
  for (float v : step) EXPECT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace sf::model

namespace sf::model {
namespace {

TEST(CpuEngine, RopeOverride_EqualsAModelSavedWithThatScaling) {
  // The study's rule switches YaRN on at run time; the result must equal a checkpoint
  // whose config.json carries the same scaling.
  const std::string plain = FreshTestDir("plain"), yarn = FreshTestDir("yarn");
  TinyModelOptions o = Tiny(Architecture::kQwen2);
  SF_ASSERT_OK(WriteTinyModel(plain, o));
  std::optional<RopeScaling> study = StudyYarnScaling(60000, 5536);
  ASSERT_TRUE(study.has_value());
  o.rope = *study;
  SF_ASSERT_OK(WriteTinyModel(yarn, o));
  EngineOptions override_options;
  override_options.rope_override = study;
  SF_ASSERT_OK_AND_ASSIGN(auto overridden, CreateEngine(plain, override_options));
  SF_ASSERT_OK_AND_ASSIGN(auto saved, CreateEngine(yarn, {}));
  SF_ASSERT_OK_AND_ASSIGN(auto original, CreateEngine(plain, {}));
  const std::vector<TokenId> prompt = Prompt(30, 96);
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> a, overridden->Prefill(prompt));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> b, saved->Prefill(prompt));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> c, original->Prefill(prompt));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(overridden->config().rope.type, RopeType::kYarn);
}

}  // namespace
}  // namespace sf::model
