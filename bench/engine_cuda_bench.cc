// CUDA backend speed. By default writes a random Llama-shaped model (~0.5B parameters,
// Qwen2.5-0.5B-like: hidden 896, 24 layers, 14 query / 2 KV heads of 64) and runs it in
// float32; --shape qwen2.5-7b (or -32b, or -72b with --layers to fit) builds that shape
// (common/qwen25_shapes.h) with random weights drawn on the device (no checkpoint: 15 GB of
// bf16 would take longer to write than to run). For each
// prompt length it times a dense prefill (seconds, tokens/s, and the FLOP rate of the
// linear layers plus causal attention) and --decode steps after it (ms/token), and reports
// the GPU memory the engine holds at the end (its buffers only grow, so this is its peak).
// --decode-only LENGTHS times decode alone after a prompt of each length whose prefill
// ran with a placeholder attention (the output zeroed on the device, through the hooks'
// device entry point): the cache then holds that many real K/V rows in a few seconds, so
// decode over a long cache can be timed without a long dense prefill. Those rows print
// "-" for the prefill columns.
//
//   engine_cuda_bench [--model DIR | --shape qwen2.5-7b|qwen2.5-32b|qwen2.5-72b] [--dtype
//   float32|bfloat16]
//                     [--layers N] [--lengths 512,2048,8192,16384] [--repeats 1]
//                     [--decode 32] [--decode-only 131072] [--chunk TOKENS] [--no-graphs]
//                     [--reference-attention]
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/qwen25_shapes.h"
#include "kernels/cuda/attention/params.h"
#include "worker/model/engine.h"
#include "worker/model/tiny_model.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "engine_cuda_bench: %s\n", std::string(s.message()).c_str());
  return 1;
}

int64_t DeviceBytesUsed() {
  size_t free_bytes = 0, total = 0;
  if (cudaMemGetInfo(&free_bytes, &total) != cudaSuccess) return 0;
  return static_cast<int64_t>(total - free_bytes);
}

// Writes zeros as the attention output, on the device: fills the KV cache with real rows
// (the projections still run) at the cost of the linear layers only.
class CacheFillAttention : public sf::model::AttentionHook {
 public:
  std::string Name() const override { return "cache-fill"; }
  absl::Status Attend(const sf::model::AttentionCall&, sf::model::AttentionStats*) override {
    return absl::UnimplementedError("cache-fill runs on the device only");
  }
  bool SupportsDevice(const sf::model::AttentionCall&) const override { return true; }
  absl::Status AttendOnDevice(const sf::model::AttentionCall& call,
                              sf::model::AttentionStats*) override {
    const sf::cuda::AttentionParams& p = *call.device->params;
    const size_t elem = p.dtype == sf::cuda::AttnDType::kBf16 ? 2 : 4;
    const cudaError_t err =
        cudaMemset2DAsync(p.out, static_cast<size_t>(p.out_row_stride) * elem, 0,
                          static_cast<size_t>(p.num_q_heads) * p.head_dim * elem,
                          static_cast<size_t>(p.num_queries), p.stream);
    if (err != cudaSuccess) return absl::InternalError(cudaGetErrorString(err));
    return absl::OkStatus();
  }
};

struct Flags {
  std::string model_dir;
  std::string shape;
  sf::model::ComputeDType dtype = sf::model::ComputeDType::kFloat32;
  bool dtype_given = false;
  int64_t layers = 0;
  std::vector<int64_t> lengths = {512, 2048, 8192, 16384};
  std::vector<int64_t> decode_only;
  int repeats = 1;
  int decode_steps = 32;
  int64_t chunk = 0;
  bool graphs = true;
  bool reference_attention = false;
};

absl::Status ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--no-graphs") {
      f->graphs = false;
      continue;
    }
    if (flag == "--reference-attention") {
      f->reference_attention = true;
      continue;
    }
    if (i + 1 >= argc) return absl::InvalidArgumentError(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--model") {
      f->model_dir = value;
    } else if (flag == "--shape") {
      if (absl::StatusOr<sf::model::ModelConfig> known = sf::model::Qwen25Shape(value, 0);
          !known.ok()) {
        return known.status();
      }
      f->shape = value;
    } else if (flag == "--dtype") {
      absl::StatusOr<sf::model::ComputeDType> d = sf::model::ParseComputeDType(value);
      if (!d.ok()) return d.status();
      f->dtype = *d;
      f->dtype_given = true;
    } else if (flag == "--layers") {
      f->layers = std::atoll(value.c_str());
    } else if (flag == "--repeats") {
      f->repeats = std::max(1, std::atoi(value.c_str()));
    } else if (flag == "--decode") {
      f->decode_steps = std::max(0, std::atoi(value.c_str()));
    } else if (flag == "--chunk") {
      f->chunk = std::atoll(value.c_str());
    } else if (flag == "--lengths" || flag == "--decode-only") {
      std::vector<int64_t>& list = flag == "--lengths" ? f->lengths : f->decode_only;
      list.clear();
      for (absl::string_view part : absl::StrSplit(value, ',')) {
        int64_t v = 0;
        if (absl::SimpleAtoi(part, &v) && v > 0) list.push_back(v);
      }
    } else {
      return absl::InvalidArgumentError("unknown flag " + flag);
    }
  }
  if (!f->shape.empty() && !f->dtype_given) f->dtype = sf::model::ComputeDType::kBfloat16;
  if (f->lengths.empty() && f->decode_only.empty()) {
    return absl::InvalidArgumentError("--lengths and --decode-only need positive integers");
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (absl::Status s = ParseFlags(argc, argv, &flags); !s.ok()) {
    Fail(s);
    return 2;
  }
  sf::model::EngineOptions eo;
  eo.backend = sf::model::BackendKind::kCuda;
  eo.dtype = flags.dtype;
  eo.prefill_chunk_tokens = flags.chunk;
  eo.cuda_graphs = flags.graphs;
  eo.reference_attention = flags.reference_attention;
  int64_t longest = 0;
  for (int64_t n : flags.lengths) longest = std::max(longest, n);
  for (int64_t n : flags.decode_only) longest = std::max(longest, n);
  eo.reserve_tokens = longest + flags.decode_steps + 1;
  const int64_t baseline = DeviceBytesUsed();
  absl::StatusOr<std::unique_ptr<sf::model::Engine>> engine_or;
  const auto load_start = Clock::now();
  if (!flags.shape.empty()) {
    absl::StatusOr<sf::model::ModelConfig> shape =
        sf::model::Qwen25Shape(flags.shape, flags.layers);
    if (!shape.ok()) return Fail(shape.status());
    engine_or = sf::model::CreateCudaEngineWithRandomWeights(*shape, eo, 1, 0.02f);
  } else {
    std::string model_dir = flags.model_dir;
    if (model_dir.empty()) {
      sf::model::TinyModelOptions o;
      o.architecture = sf::model::Architecture::kQwen2;
      o.vocab_size = 32768;
      o.hidden_size = 896;
      o.intermediate_size = 4864;
      o.num_layers = 24;
      o.num_heads = 14;
      o.num_kv_heads = 2;
      o.head_dim = 64;
      o.max_position_embeddings = 1 << 20;
      o.dtype = sf::model::DType::kBF16;
      model_dir = (std::filesystem::temp_directory_path() / "sf_engine_cuda_bench_model").string();
      if (absl::Status s = sf::model::WriteTinyModel(model_dir, o); !s.ok()) return Fail(s);
    }
    engine_or = sf::model::CreateEngine(model_dir, eo);
  }
  if (!engine_or.ok()) return Fail(engine_or.status());
  const double load_seconds = Seconds(load_start, Clock::now());
  sf::model::Engine& engine = **engine_or;
  const sf::model::ModelConfig& c = engine.config();
  const int64_t H = c.hidden_size, d = c.head_dim, I = c.intermediate_size, L = c.num_layers;
  const int64_t qkv = (c.num_heads + 2 * c.num_kv_heads) * d, q = c.num_heads * d;
  // The prompt's logits are computed for its last position only.
  const double linear_flops_per_token = 2.0 * L * (H * qkv + q * H + H * 2 * I + I * H);

  std::printf(
      "engine_cuda_bench on %s: %lld layers, hidden %lld, heads %lld/%lld x %lld, vocab %lld, "
      "%s, loaded in %.1f s (%s), %.2f GiB after load\n",
      engine.BackendName().c_str(), static_cast<long long>(L), static_cast<long long>(H),
      static_cast<long long>(c.num_heads), static_cast<long long>(c.num_kv_heads),
      static_cast<long long>(d), static_cast<long long>(c.vocab_size),
      sf::model::ComputeDTypeName(flags.dtype), load_seconds,
      flags.shape.empty() ? "checkpoint" : "random weights drawn on the device",
      (DeviceBytesUsed() - baseline) / 1073741824.0);
  std::printf("%10s %10s %14s %10s %16s %10s\n", "tokens", "prefill s", "prefill tok/s", "TFLOP/s",
              "decode ms/token", "GPU GiB");
  std::vector<std::pair<int64_t, bool>> runs;
  for (int64_t n : flags.lengths) runs.push_back({n, false});
  for (int64_t n : flags.decode_only) runs.push_back({n, true});
  CacheFillAttention fill;
  for (const auto& [n, only_decode] : runs) {
    std::vector<sf::TokenId> prompt(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      prompt[static_cast<size_t>(i)] = static_cast<sf::TokenId>((i * 7919) % c.vocab_size);
    }
    double best = 1e30;
    for (int r = 0; r < (only_decode ? 1 : flags.repeats); ++r) {
      engine.Reset();
      const auto start = Clock::now();
      if (only_decode) {
        // In pieces of 8192 tokens, as the engine's own chunked prefill, so activations
        // stay as small as a dense prefill's.
        engine.SetAttention(&fill, nullptr);
        for (int64_t b = 0; b < n; b += 8192) {
          auto piece = engine.Prefill(absl::MakeConstSpan(prompt).subspan(
              static_cast<size_t>(b), static_cast<size_t>(std::min<int64_t>(8192, n - b))));
          if (!piece.ok()) return Fail(piece.status());
        }
        engine.SetAttention(nullptr, nullptr);
      } else {
        auto logits = engine.Prefill(prompt);
        if (!logits.ok()) return Fail(logits.status());
      }
      best = std::min(best, Seconds(start, Clock::now()));
    }
    double decode_ms = 0;
    if (flags.decode_steps > 0) {
      // One untimed step first: it captures the decode graph.
      auto warm = engine.Decode(1);
      if (!warm.ok()) return Fail(warm.status());
      const auto decode_start = Clock::now();
      for (int i = 0; i < flags.decode_steps; ++i) {
        auto logits = engine.Decode(static_cast<sf::TokenId>(i + 2));
        if (!logits.ok()) return Fail(logits.status());
      }
      decode_ms = 1e3 * Seconds(decode_start, Clock::now()) / flags.decode_steps;
    }
    const double used = (DeviceBytesUsed() - baseline) / 1073741824.0;
    if (only_decode) {
      std::printf("%10lld %10s %14s %10s %16.3f %10.2f\n", static_cast<long long>(n), "-", "-", "-",
                  decode_ms, used);
      std::fflush(stdout);
      continue;
    }
    const double nn = static_cast<double>(n);
    // QK^T and PV over the causal half, per query head.
    const double attention_flops = 2.0 * 2.0 * L * c.num_heads * d * nn * (nn + 1) / 2;
    const double tflops =
        (linear_flops_per_token * nn + 2.0 * H * c.vocab_size + attention_flops) / best / 1e12;
    std::printf("%10lld %10.3f %14.0f %10.1f %16.3f %10.2f\n", static_cast<long long>(n), best,
                nn / best, tflops, decode_ms, used);
    std::fflush(stdout);
  }
  return 0;
}
