// Each method's hook (worker/method_hooks.h) in the bf16 CUDA engine on its device path
// (worker/method_hooks_cuda.h) against the same hook forced onto the host mirror (the
// CPU reference over the device cache's bf16 values): the same pairs and estimation FLOPs,
// logits within bf16 tolerance, the same kept rows for eviction methods, and the device
// engine recording "cuda" for both phases. Tiny random models, head_dim 64 and 128.
// Needs an sm_90 GPU (label gpu).
//
// Tolerances. Logits: the host form rounds its double output to bf16 where the device
// kernel rounds its float32 one, so attention outputs differ by an ulp at times; through
// two layers the per-row relative L2 error of the logits stays below kRowTolerance.
// Selections: the device scores in float32 where the reference sums in double, so an
// entry whose score ties another's within float32 rounding may be chosen differently
// (kernels/cuda/attention/select.h); random tiny models rarely have such ties. Counts
// that a tie can change (pairs of top-k and mass-threshold selections, kept rows of
// Ada-SnapKV) may differ by kTieShare of their value; every difference is printed.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "kernels/cuda/attention/params.h"
#include "worker/method_hooks.h"
#include "worker/model/engine.h"
#include "worker/model/test_util.h"
#include "worker/model/tiny_model.h"

namespace sf::worker {
namespace {

using model::AttentionBackend;
using model::AttentionCall;
using model::AttentionHook;
using model::AttentionStats;

constexpr double kRowTolerance = 2e-2;
constexpr double kTieShare = 1e-2;
constexpr int kPromptTokens = 320;
constexpr int kDecodeSteps = 8;

uint16_t Bf16Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return static_cast<uint16_t>(u >> 16);  // exact: the mirror holds bf16 values
}

// Kept key rows per layer and KV head after AfterPrefill, as bf16 bits.
using KeptKeys = std::map<int, std::vector<std::vector<uint16_t>>>;

// Forwards to a method hook; with allow_device false it never offers the device path, so
// the engine runs the hook on the host mirror. Records the cache's keys after prefill.
class Probe : public AttentionHook {
 public:
  Probe(MethodHook* inner, bool allow_device) : inner_(inner), allow_device_(allow_device) {}
  std::string Name() const override { return inner_->Name(); }
  absl::Status Attend(const AttentionCall& call, AttentionStats* stats) override {
    return inner_->Attend(call, stats);
  }
  absl::Status AfterPrefill(const AttentionCall& call) override {
    SF_RETURN_IF_ERROR(inner_->AfterPrefill(call));
    auto& heads = kept[call.layer];
    heads.assign(static_cast<size_t>(call.num_kv_heads), {});
    for (int h = 0; h < call.num_kv_heads; ++h) {
      const float* k = call.cache->keys(call.layer, h);
      const int64_t n = call.cache->length(call.layer, h) * call.head_dim;
      for (int64_t i = 0; i < n; ++i) heads[static_cast<size_t>(h)].push_back(Bf16Bits(k[i]));
    }
    return absl::OkStatus();
  }
  bool IsExactDense() const override { return inner_->IsExactDense(); }
  bool SupportsDevice(const AttentionCall& call) const override {
    return allow_device_ && inner_->SupportsDevice(call);
  }
  absl::Status AttendOnDevice(const AttentionCall& call, AttentionStats* stats) override {
    ++device_calls;
    return inner_->AttendOnDevice(call, stats);
  }
  absl::Status AfterPrefillOnDevice(const AttentionCall& call) override {
    SF_RETURN_IF_ERROR(inner_->AfterPrefillOnDevice(call));
    auto& heads = kept[call.layer];
    heads.assign(static_cast<size_t>(call.num_kv_heads), {});
    const cudaStream_t stream = call.device->params->stream;
    for (int h = 0; h < call.num_kv_heads; ++h) {
      const int64_t n = call.device->host_kv_lengths[h] * call.head_dim;
      auto& rows = heads[static_cast<size_t>(h)];
      rows.resize(static_cast<size_t>(n));
      const auto* base = static_cast<const uint16_t*>(call.device->keys) +
                         h * call.device->capacity * call.head_dim;
      if (cudaMemcpyAsync(rows.data(), base, static_cast<size_t>(n) * 2, cudaMemcpyDeviceToHost,
                          stream) != cudaSuccess ||
          cudaStreamSynchronize(stream) != cudaSuccess) {
        return absl::InternalError("reading the kept keys");
      }
    }
    return absl::OkStatus();
  }
  bool WantsPageBounds() const override { return inner_->WantsPageBounds(); }

  KeptKeys kept;
  int device_calls = 0;

 private:
  MethodHook* inner_;
  bool allow_device_;
};

MethodChoice Method(const std::string& name, ParamMap params) {
  MethodChoice m;
  m.name = name;
  m.params = std::move(params);
  return m;
}

struct Case {
  std::string name;
  MethodChoice prefill;
  MethodChoice decode;
  bool counts_may_tie = false;  // pairs / FLOPs / kept rows of a top-k or mass choice
};

std::vector<Case> Cases() {
  const MethodChoice dense = Method("dense", {});
  const ParamMap snap = {{"window", int64_t{32}},
                         {"pool", int64_t{5}},
                         {"keep_first", int64_t{4}},
                         {"keep_last", int64_t{16}},
                         {"token_capacity", int64_t{96}}};
  ParamMap ada = snap;
  ada["floor"] = 0.2;
  const MethodChoice streaming =
      Method("streaming", {{"sink", int64_t{4}}, {"window", int64_t{64}}});
  auto flex = [](const std::string& variant, int64_t block) {
    return Method("flexprefill", {{"gamma", 0.9},
                                  {"tau", 0.3},
                                  {"min_budget", int64_t{32}},
                                  {"last_q", int64_t{64}},
                                  {"block", block},
                                  {"variant", variant}});
  };
  return {
      {"streaming_prefill", streaming, dense},
      {"vertical_slash",
       Method("vertical_slash", {{"last_q", int64_t{64}},
                                 {"sink", int64_t{4}},
                                 {"local", int64_t{16}},
                                 {"verticals", int64_t{32}},
                                 {"slashes", int64_t{32}}}),
       dense, true},
      {"flexprefill_study", flex("study", 128), dense, true},
      {"flexprefill_original", flex("original", 64), dense, true},
      {"block_sparse",
       Method("block_sparse", {{"block", int64_t{16}}, {"block_budget", int64_t{6}}}), dense, true},
      {"xattention",
       Method("xattention", {{"block", int64_t{64}}, {"stride", int64_t{8}}, {"threshold", 0.9}}),
       dense, true},
      {"tri_shape",
       Method("tri_shape",
              {{"sink", int64_t{4}}, {"last_q", int64_t{32}}, {"window", int64_t{48}}}),
       dense},
      {"snapkv", dense, Method("snapkv", snap), false},
      {"ada_snapkv", dense, Method("ada_snapkv", ada), true},
      {"streaming_decode", dense, streaming},
      {"quest_shared", dense,
       Method("quest",
              {{"page", int64_t{16}}, {"gqa_shared", true}, {"token_budget", int64_t{64}}})},
      {"quest_per_head", dense,
       Method("quest",
              {{"page", int64_t{16}}, {"gqa_shared", false}, {"token_budget", int64_t{64}}})},
      {"oracle_topk", dense, Method("oracle_topk", {{"top_k", int64_t{48}}})},
      {"vertical_slash_then_snapkv",
       Method("vertical_slash", {{"last_q", int64_t{64}},
                                 {"sink", int64_t{4}},
                                 {"local", int64_t{16}},
                                 {"verticals", int64_t{32}},
                                 {"slashes", int64_t{32}}}),
       Method("snapkv", snap), true},
  };
}

model::TinyModelOptions Tiny(int64_t head_dim) {
  model::TinyModelOptions o;
  o.architecture = model::Architecture::kQwen2;
  o.dtype = model::DType::kBF16;
  o.vocab_size = 96;
  o.num_layers = 2;
  o.intermediate_size = 96;
  o.init_std = 0.2;
  if (head_dim == 64) {  // 4 query heads on 2 KV heads
    o.hidden_size = 256;
    o.num_heads = 4;
    o.num_kv_heads = 2;
  } else {  // 128: 4 query heads on 1 KV head
    o.hidden_size = 512;
    o.num_heads = 4;
    o.num_kv_heads = 1;
  }
  return o;
}

std::vector<TokenId> Prompt(int n, int vocab) {
  std::vector<TokenId> t;
  for (int i = 0; i < n; ++i) t.push_back(static_cast<TokenId>((i * 37 + 11) % vocab));
  return t;
}

double WorstRowError(const std::vector<float>& got, const std::vector<float>& want, int64_t vocab) {
  EXPECT_EQ(got.size(), want.size());
  double worst = 0;
  for (size_t r = 0; r < std::min(got.size(), want.size()) / static_cast<size_t>(vocab); ++r) {
    double diff = 0, norm = 1e-30;
    for (int64_t i = 0; i < vocab; ++i) {
      const double g = got[r * vocab + i], w = want[r * vocab + i];
      if (!std::isfinite(g)) return 1e9;
      diff += (g - w) * (g - w);
      norm += w * w;
    }
    worst = std::max(worst, std::sqrt(diff / norm));
  }
  return worst;
}

// Equal, or (when a tie may change it) within kTieShare; prints any difference.
void ExpectCount(const char* what, double device, double host, bool may_tie) {
  if (device != host) {
    std::printf("  %s differs: device %.17g host %.17g\n", what, device, host);
  }
  if (may_tie) {
    EXPECT_LE(std::abs(device - host), kTieShare * std::abs(host)) << what;
  } else {
    EXPECT_EQ(device, host) << what;
  }
}

// Kept rows: the same lengths per head (Ada-SnapKV: within kTieShare of the total), and
// the same key rows at the same places. `first_layer_only`: later layers' keys differ in
// their last bits when the prefill method itself ran on two paths.
void ExpectSameKept(const KeptKeys& device, const KeptKeys& host, int64_t head_dim, bool may_tie,
                    bool first_layer_only) {
  ASSERT_EQ(device.size(), host.size());
  int64_t rows = 0, differing = 0;
  for (const auto& [layer, heads] : host) {
    if (first_layer_only && layer > 0) continue;
    const auto& got = device.at(layer);
    ASSERT_EQ(got.size(), heads.size());
    for (size_t h = 0; h < heads.size(); ++h) {
      const size_t n = std::max(got[h].size(), heads[h].size()) / static_cast<size_t>(head_dim);
      rows += static_cast<int64_t>(n);
      for (size_t r = 0; r < n; ++r) {
        const size_t at = r * static_cast<size_t>(head_dim);
        const bool same =
            at + head_dim <= got[h].size() && at + head_dim <= heads[h].size() &&
            std::equal(got[h].begin() + at, got[h].begin() + at + head_dim, heads[h].begin() + at);
        differing += same ? 0 : 1;
      }
      if (!may_tie) {
        EXPECT_EQ(got[h].size(), heads[h].size()) << "layer " << layer << " head " << h;
      }
    }
  }
  std::printf("  kept rows: %lld, %lld differ\n", static_cast<long long>(rows),
              static_cast<long long>(differing));
  EXPECT_LE(differing, may_tie ? static_cast<int64_t>(kTieShare * rows) : 0);
}

struct HookCase {
  int64_t head_dim;
  Case method;
};

std::vector<HookCase> HookCases() {
  std::vector<HookCase> all;
  for (int64_t head_dim : {64, 128}) {
    for (const Case& c : Cases()) all.push_back({head_dim, c});
  }
  return all;
}

class MethodHooksOnDevice : public ::testing::TestWithParam<HookCase> {};

TEST_P(MethodHooksOnDevice, MatchesSameHookOnHostMirror) {
  const int64_t head_dim = GetParam().head_dim;
  const Case& c = GetParam().method;
  const std::string dir = model::testing::FreshTestDir();
  SF_ASSERT_OK(model::WriteTinyModel(dir, Tiny(head_dim)));
  model::EngineOptions o;
  o.backend = model::BackendKind::kCuda;
  o.dtype = model::ComputeDType::kBfloat16;
  std::printf("[hd%lld %s]\n", static_cast<long long>(head_dim), c.name.c_str());
  SF_ASSERT_OK_AND_ASSIGN(auto device, model::CreateEngine(dir, o));
  SF_ASSERT_OK_AND_ASSIGN(auto host, model::CreateEngine(dir, o));
  SF_ASSERT_OK_AND_ASSIGN(auto dev_prefill, MakePrefillHook(c.prefill));
  SF_ASSERT_OK_AND_ASSIGN(auto dev_decode, MakeDecodeHook(c.decode));
  SF_ASSERT_OK_AND_ASSIGN(auto host_prefill, MakePrefillHook(c.prefill));
  SF_ASSERT_OK_AND_ASSIGN(auto host_decode, MakeDecodeHook(c.decode));
  Probe dp(dev_prefill.get(), true), dd(dev_decode.get(), true);
  Probe hp(host_prefill.get(), false), hd(host_decode.get(), false);
  device->SetAttention(&dp, &dd);
  host->SetAttention(&hp, &hd);
  const int64_t vocab = host->config().vocab_size;
  const auto prompt = Prompt(kPromptTokens, static_cast<int>(vocab));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> want, host->Prefill(prompt, true));
  SF_ASSERT_OK_AND_ASSIGN(std::vector<float> got, device->Prefill(prompt, true));
  double worst = WorstRowError(got, want, vocab);
  std::printf("  prefill %d tokens: worst row error %.3g\n", kPromptTokens, worst);
  EXPECT_LE(worst, kRowTolerance);
  for (int step = 0; step < kDecodeSteps; ++step) {
    const TokenId next = model::ArgMax(absl::MakeSpan(want).subspan(want.size() - vocab));
    SF_ASSERT_OK_AND_ASSIGN(want, host->Decode(next));
    SF_ASSERT_OK_AND_ASSIGN(got, device->Decode(next));
    const double e = WorstRowError(got, want, vocab);
    worst = std::max(worst, e);
    EXPECT_LE(e, kRowTolerance) << "decode step " << step;
  }
  std::printf("  %d decode steps: worst row error %.3g\n", kDecodeSteps, worst);

  const model::EngineCounters& a = device->counters();
  const model::EngineCounters& b = host->counters();
  EXPECT_EQ(a.prefill_backend, AttentionBackend::kCuda);
  EXPECT_EQ(a.decode_backend, AttentionBackend::kCuda);
  const bool sparse_prefill = !dev_prefill->IsExactDense();
  const bool sparse_decode = !dev_decode->IsExactDense();
  EXPECT_EQ(b.prefill_backend, sparse_prefill || sparse_decode ? AttentionBackend::kHostMirror
                                                               : AttentionBackend::kCuda);
  if (sparse_decode) {
    EXPECT_EQ(b.decode_backend, AttentionBackend::kHostMirror);
  }
  EXPECT_GT(dp.device_calls + dd.device_calls, 0);
  ExpectCount("prefill pairs", a.prefill_attention.pairs_computed,
              b.prefill_attention.pairs_computed, c.counts_may_tie);
  ExpectCount("prefill dense pairs", a.prefill_attention.pairs_dense,
              b.prefill_attention.pairs_dense, false);
  ExpectCount("decode pairs", a.decode_attention.pairs_computed, b.decode_attention.pairs_computed,
              c.counts_may_tie);
  ExpectCount("decode dense pairs", a.decode_attention.pairs_dense, b.decode_attention.pairs_dense,
              false);
  ExpectCount("prefill estimation FLOPs", dev_prefill->estimation_flops(),
              host_prefill->estimation_flops(), c.prefill.name == "flexprefill");
  ExpectCount("decode estimation FLOPs", dev_decode->estimation_flops(),
              host_decode->estimation_flops(), false);
  std::printf("  pairs prefill %.0f / %.0f, decode %.0f / %.0f; FLOPs %.4g + %.4g\n",
              a.prefill_attention.pairs_computed, a.prefill_attention.pairs_dense,
              a.decode_attention.pairs_computed, a.decode_attention.pairs_dense,
              dev_prefill->estimation_flops(), dev_decode->estimation_flops());
  if (sparse_decode && dd.kept.size() + hd.kept.size() > 0) {
    ExpectSameKept(dd.kept, hd.kept, head_dim, c.decode.name == "ada_snapkv", sparse_prefill);
  }
}

INSTANTIATE_TEST_SUITE_P(Methods, MethodHooksOnDevice, ::testing::ValuesIn(HookCases()),
                         [](const ::testing::TestParamInfo<HookCase>& p) {
                           return absl::StrCat("hd", p.param.head_dim, "_", p.param.method.name);
                         });

// Where the kernels cannot run (a float32 engine, head_dim 80) every hook runs on the
// host mirror, and says so.
TEST(MethodHooksOnDevice, UnsupportedEngine_RunsOnHostMirror) {
  model::TinyModelOptions odd = Tiny(64);
  odd.hidden_size = 240;  // head_dim 80
  odd.num_heads = 3;
  odd.num_kv_heads = 1;
  struct Config {
    model::TinyModelOptions model;
    model::ComputeDType dtype;
  };
  for (const Config& config : {Config{Tiny(64), model::ComputeDType::kFloat32},
                               Config{odd, model::ComputeDType::kBfloat16}}) {
    const std::string dir = model::testing::FreshTestDir(absl::StrCat(
        "unsupported", config.model.hidden_size, model::ComputeDTypeName(config.dtype)));
    SF_ASSERT_OK(model::WriteTinyModel(dir, config.model));
    model::EngineOptions o;
    o.backend = model::BackendKind::kCuda;
    o.dtype = config.dtype;
    SF_ASSERT_OK_AND_ASSIGN(auto engine, model::CreateEngine(dir, o));
    SF_ASSERT_OK_AND_ASSIGN(
        auto prefill,
        MakePrefillHook(Method("streaming", {{"sink", int64_t{4}}, {"window", int64_t{32}}})));
    SF_ASSERT_OK_AND_ASSIGN(auto decode,
                            MakeDecodeHook(Method("oracle_topk", {{"top_k", int64_t{16}}})));
    engine->SetAttention(prefill.get(), decode.get());
    const auto prompt = Prompt(100, static_cast<int>(engine->config().vocab_size));
    SF_ASSERT_OK_AND_ASSIGN(std::vector<float> logits, engine->Prefill(prompt));
    SF_ASSERT_OK(engine->Decode(model::ArgMax(logits)).status());
    EXPECT_EQ(engine->counters().prefill_backend, AttentionBackend::kHostMirror);
    EXPECT_EQ(engine->counters().decode_backend, AttentionBackend::kHostMirror);
  }
}

}  // namespace
}  // namespace sf::worker
