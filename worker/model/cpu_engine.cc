// The CPU backend: float32 weights (converted from bf16/fp16 at load time), one
// forward pass for any number of new tokens, linear layers as OpenBLAS GEMMs split over
// a thread pool, attention through the AttentionHook of the phase.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "worker/model/engine.h"
#include "worker/model/forward_engine.h"
#include "worker/model/gemm.h"
#include "worker/model/safetensors.h"
#include "worker/model/thread_pool.h"
#include "worker/model/weights.h"

namespace sf::model {
namespace {

class CpuEngine : public ForwardEngine {
 public:
  CpuEngine(ModelConfig config, const EngineOptions& options)
      : config_(std::move(config)),
        pool_(options.num_threads),
        cache_(static_cast<int>(config_.num_layers), static_cast<int>(config_.num_kv_heads),
               static_cast<int>(config_.head_dim), options.page_size) {
    if (options.reserve_tokens > 0) cache_.Reserve(options.reserve_tokens);
    counters_.attention_kernels = "cpu";
  }

  absl::Status Load(const Checkpoint& ckpt) {
    SF_ASSIGN_OR_RETURN(ModelWeights w, LoadModelWeights(ckpt, config_));
    embed_ = std::move(w.embed);
    layers_ = std::move(w.layers);
    final_norm_ = std::move(w.final_norm);
    lm_head_ = std::move(w.lm_head);
    SF_ASSIGN_OR_RETURN(rope_, ComputeRope(config_));
    return absl::OkStatus();
  }

  const ModelConfig& config() const override { return config_; }
  void Reset() override {
    cache_.Clear();
    position_ = 0;
  }
  int64_t position() const override { return position_; }
  KvCache& cache() override { return cache_; }
  void SetAttention(AttentionHook* prefill, AttentionHook* decode) override {
    prefill_hook_ = prefill != nullptr ? prefill : &dense_;
    decode_hook_ = decode != nullptr ? decode : &dense_;
  }
  std::string BackendName() const override {
    return absl::StrCat("cpu(", pool_.num_threads(), " threads)");
  }

 private:
  // y[n][out] (=|+=) x[n][in] W^T (+ b). Rows are split across threads when there
  // are many (prefill); output columns when there are few (decode).
  void MatMul(const Linear& lin, const float* weight, const float* x, int64_t n, float* y,
              bool accumulate) {
    const int threads = pool_.num_threads();
    auto bias_rows = [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
      if (lin.bias.empty()) return;
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c) y[r * lin.out + c] += lin.bias[static_cast<size_t>(c)];
      }
    };
    if (n >= 16 * threads) {
      const int64_t grain = std::max<int64_t>(16, (n + 4 * threads - 1) / (4 * threads));
      pool_.ParallelFor(n, grain, [&](int64_t r0, int64_t r1) {
        GemmNT(r1 - r0, lin.out, lin.in, x + r0 * lin.in, lin.in, weight, lin.in, y + r0 * lin.out,
               lin.out, accumulate);
        bias_rows(r0, r1, 0, lin.out);
      });
    } else {
      const int64_t grain = std::max<int64_t>(64, (lin.out + 4 * threads - 1) / (4 * threads));
      pool_.ParallelFor(lin.out, grain, [&](int64_t c0, int64_t c1) {
        GemmNT(n, c1 - c0, lin.in, x, lin.in, weight + c0 * lin.in, lin.in, y + c0, lin.out,
               accumulate);
        bias_rows(0, n, c0, c1);
      });
    }
  }
  void MatMul(const Linear& lin, const float* x, int64_t n, float* y, bool accumulate) {
    MatMul(lin, lin.weight.data(), x, n, y, accumulate);
  }

  // out = x / rms(x) * weight, per row of `cols`, as transformers' RMSNorm in float32.
  void RmsNorm(const float* x, const std::vector<float>& weight, int64_t n, int64_t cols,
               float* out) {
    const float eps = static_cast<float>(config_.rms_norm_eps);
    pool_.ParallelFor(n, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * cols;
        float* orow = out + r * cols;
        float sum = 0;
        for (int64_t c = 0; c < cols; ++c) sum += xr[c] * xr[c];
        const float inv = 1.0f / std::sqrt(sum / static_cast<float>(cols) + eps);
        for (int64_t c = 0; c < cols; ++c) orow[c] = weight[static_cast<size_t>(c)] * (xr[c] * inv);
      }
    });
  }

  // Rotates heads in place: `heads` heads of head_dim at each row of `x`.
  void ApplyRope(float* x, int64_t n, int64_t row_stride, int64_t heads,
                 const std::vector<float>& cos, const std::vector<float>& sin) {
    const int64_t d = config_.head_dim, half = d / 2;
    pool_.ParallelFor(n, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* c = cos.data() + r * half;
        const float* s = sin.data() + r * half;
        for (int64_t h = 0; h < heads; ++h) {
          float* v = x + r * row_stride + h * d;
          for (int64_t i = 0; i < half; ++i) {
            const float a = v[i], b = v[i + half];
            v[i] = a * c[i] - b * s[i];
            v[i + half] = b * c[i] + a * s[i];
          }
        }
      }
    });
  }

  absl::StatusOr<std::vector<float>> Forward(absl::Span<const TokenId> tokens, bool all_positions,
                                             AttentionPhase phase) override {
    const ModelConfig& c = config_;
    const int64_t n = static_cast<int64_t>(tokens.size());
    if (n == 0) return absl::InvalidArgumentError("no tokens to run");
    for (int64_t i = 0; i < n; ++i) {
      if (tokens[i] < 0 || tokens[i] >= c.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "token ", tokens[i], " at index ", i, " is outside the vocabulary of ", c.vocab_size));
      }
    }
    if (c.sliding_window && position_ + n > *c.sliding_window) {
      return absl::OutOfRangeError(absl::StrCat(
          "sequence of ", position_ + n, " tokens exceeds the model's sliding_window of ",
          *c.sliding_window, "; the engine computes full causal attention only"));
    }
    const int64_t H = c.hidden_size, d = c.head_dim, I = c.intermediate_size;
    const int64_t q_width = c.num_heads * d, kv_width = c.num_kv_heads * d;
    const int64_t qkv_width = q_width + 2 * kv_width;
    const int64_t pos0 = position_;

    std::vector<float> x(static_cast<size_t>(n * H));
    for (int64_t i = 0; i < n; ++i) {
      std::copy_n(embed_.data() + tokens[i] * H, H, x.data() + i * H);
    }
    // cos/sin of every new position, with YaRN's attention scaling folded in.
    const int64_t half = d / 2;
    std::vector<float> cos(static_cast<size_t>(n * half)), sin(cos.size());
    for (int64_t i = 0; i < n; ++i) {
      const float pos = static_cast<float>(pos0 + i);
      for (int64_t j = 0; j < half; ++j) {
        const float angle = pos * rope_.inv_freq[static_cast<size_t>(j)];
        cos[i * half + j] = static_cast<float>(std::cos(double{angle})) * rope_.attention_scaling;
        sin[i * half + j] = static_cast<float>(std::sin(double{angle})) * rope_.attention_scaling;
      }
    }
    std::vector<float> h(x.size()), qkv(static_cast<size_t>(n * qkv_width));
    std::vector<float> attn(static_cast<size_t>(n * q_width));
    std::vector<float> gate_up(static_cast<size_t>(n * 2 * I)), act(static_cast<size_t>(n * I));
    AttentionHook* hook = phase == AttentionPhase::kPrefill ? prefill_hook_ : decode_hook_;
    AttentionStats& stats = phase == AttentionPhase::kPrefill ? counters_.prefill_attention
                                                              : counters_.decode_attention;
    (phase == AttentionPhase::kPrefill ? counters_.prefill_backend : counters_.decode_backend) =
        AttentionBackend::kCpu;
    for (int64_t li = 0; li < c.num_layers; ++li) {
      LayerWeights& L = layers_[static_cast<size_t>(li)];
      RmsNorm(x.data(), L.input_norm, n, H, h.data());
      MatMul(L.qkv, h.data(), n, qkv.data(), false);
      ApplyRope(qkv.data(), n, qkv_width, c.num_heads + c.num_kv_heads, cos, sin);
      cache_.Append(static_cast<int>(li), static_cast<int>(n), qkv.data() + q_width,
                    qkv.data() + q_width + kv_width, qkv_width, pos0);
      AttentionCall call;
      call.layer = static_cast<int>(li);
      call.phase = phase;
      call.num_queries = static_cast<int>(n);
      call.num_q_heads = static_cast<int>(c.num_heads);
      call.num_kv_heads = static_cast<int>(c.num_kv_heads);
      call.head_dim = static_cast<int>(d);
      call.q = qkv.data();
      call.q_row_stride = qkv_width;
      call.softmax_scale = 1.0f / std::sqrt(static_cast<float>(d));
      call.first_position = pos0;
      call.cache = &cache_;
      call.out = attn.data();
      call.out_row_stride = q_width;
      call.pool = &pool_;
      SF_RETURN_IF_ERROR(Annotate(hook->Attend(call, &stats),
                                  absl::StrCat(hook->Name(), " attention, layer ", li)));
      if (phase == AttentionPhase::kPrefill) {
        // Both phases' methods may act between prefill and decode: the decode method's
        // AfterPrefill is where KV compression (SnapKV-style eviction) runs.
        for (AttentionHook* after : {prefill_hook_, decode_hook_}) {
          if (after == decode_hook_ && decode_hook_ == prefill_hook_) break;
          SF_RETURN_IF_ERROR(Annotate(after->AfterPrefill(call),
                                      absl::StrCat(after->Name(), " after prefill, layer ", li)));
        }
      }
      MatMul(L.o, attn.data(), n, x.data(), true);
      RmsNorm(x.data(), L.post_norm, n, H, h.data());
      MatMul(L.gate_up, h.data(), n, gate_up.data(), false);
      pool_.ParallelFor(n, 64, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const float* g = gate_up.data() + r * 2 * I;
          const float* u = g + I;
          float* a = act.data() + r * I;
          for (int64_t j = 0; j < I; ++j) a[j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
        }
      });
      MatMul(L.down, act.data(), n, x.data(), true);
    }
    position_ += n;
    const int64_t first_row = all_positions ? 0 : n - 1;
    const int64_t rows = n - first_row;
    RmsNorm(x.data() + first_row * H, final_norm_, rows, H, h.data());
    std::vector<float> logits(static_cast<size_t>(rows * c.vocab_size));
    const float* head = c.tie_word_embeddings ? embed_.data() : lm_head_.weight.data();
    MatMul(lm_head_, head, h.data(), rows, logits.data(), false);
    return logits;
  }

  ModelConfig config_;
  ThreadPool pool_;
  KvCache cache_;
  std::vector<float> embed_;
  std::vector<LayerWeights> layers_;
  std::vector<float> final_norm_;
  Linear lm_head_;  // weight empty when tied to embed_
  RopeTable rope_;
  DenseAttention dense_;
  AttentionHook* prefill_hook_ = &dense_;
  AttentionHook* decode_hook_ = &dense_;
  int64_t position_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> CreateCpuEngine(const std::string& model_dir,
                                                        const EngineOptions& options) {
  SF_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  if (options.rope_override) config.rope = *options.rope_override;
  if (options.page_size <= 0) {
    return absl::InvalidArgumentError("EngineOptions.page_size must be positive");
  }
  if (options.dtype != ComputeDType::kFloat32) {
    return absl::InvalidArgumentError(absl::StrCat("the cpu backend computes in float32 only, not ",
                                                   ComputeDTypeName(options.dtype),
                                                   "; use the cuda backend for bfloat16"));
  }
  if (!options.layer_stages.empty()) {
    return absl::InvalidArgumentError(
        "EngineOptions.layer_stages splits a model over GPUs; the cpu backend holds every "
        "layer (use the cuda backend, or leave layer_stages empty)");
  }
  SF_ASSIGN_OR_RETURN(std::unique_ptr<Checkpoint> ckpt, Checkpoint::Open(model_dir));
  auto engine = std::make_unique<CpuEngine>(std::move(config), options);
  SF_RETURN_IF_ERROR(Annotate(engine->Load(*ckpt), absl::StrCat("loading ", model_dir)));
  return std::unique_ptr<Engine>(std::move(engine));
}

absl::StatusOr<BackendKind> ParseBackendKind(absl::string_view name) {
  if (name == "cpu") return BackendKind::kCpu;
  if (name == "cuda") return BackendKind::kCuda;
  return absl::InvalidArgumentError(
      absl::StrCat("backend '", name, "' is not known; use cpu or cuda"));
}

absl::StatusOr<std::unique_ptr<Engine>> CreateEngine(const std::string& model_dir,
                                                     const EngineOptions& options) {
  switch (options.backend) {
    case BackendKind::kCpu:
      return CreateCpuEngine(model_dir, options);
    case BackendKind::kCuda:
      return CreateCudaEngine(model_dir, options);
  }
  return absl::InvalidArgumentError("unknown backend");
}

#ifndef SF_MODEL_WITH_CUDA
absl::StatusOr<std::unique_ptr<Engine>> CreateCudaEngine(const std::string& model_dir,
                                                         const EngineOptions& options) {
  return absl::UnimplementedError(
      "this build has no CUDA; rebuild with nvcc (or use the cpu backend)");
}

absl::StatusOr<std::unique_ptr<Engine>> CreateCudaEngineWithRandomWeights(
    const ModelConfig& config, const EngineOptions& options, uint64_t seed, float init_std) {
  return absl::UnimplementedError("this build has no CUDA; rebuild with nvcc");
}
#endif

TokenId ArgMax(absl::Span<const float> logits) {
  TokenId best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[static_cast<size_t>(best)]) best = static_cast<TokenId>(i);
  }
  return best;
}

}  // namespace sf::model
