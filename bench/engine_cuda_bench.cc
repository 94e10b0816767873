// CUDA backend speed: writes a random Llama-shaped model (~0.5B parameters by default,
// Qwen2.5-0.5B-like: hidden 896, 24 layers, 14 query / 2 KV heads of 128) or uses --model,
// then for each prompt length times a dense prefill (tokens/s, and the FLOP rate of the
// linear layers plus causal attention) and 32 decode steps after it (ms/token).
//
//   engine_cuda_bench [--model DIR] [--lengths 512,2048,8192,16384] [--repeats 1]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
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

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir;
  std::vector<int64_t> lengths = {512, 2048, 8192, 16384};
  int repeats = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model")) model_dir = argv[i + 1];
    if (!std::strcmp(argv[i], "--repeats")) repeats = std::max(1, std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--lengths")) {
      lengths.clear();
      for (absl::string_view part : absl::StrSplit(argv[i + 1], ',')) {
        int64_t v = 0;
        if (absl::SimpleAtoi(part, &v) && v > 0) lengths.push_back(v);
      }
    }
  }
  if (lengths.empty()) {
    std::fprintf(stderr, "engine_cuda_bench: --lengths needs positive integers\n");
    return 2;
  }
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
  sf::model::EngineOptions eo;
  eo.backend = sf::model::BackendKind::kCuda;
  eo.reserve_tokens = *std::max_element(lengths.begin(), lengths.end()) + 64;
  auto engine_or = sf::model::CreateEngine(model_dir, eo);
  if (!engine_or.ok()) return Fail(engine_or.status());
  sf::model::Engine& engine = **engine_or;
  const sf::model::ModelConfig& c = engine.config();
  const int64_t H = c.hidden_size, d = c.head_dim, I = c.intermediate_size, L = c.num_layers;
  const int64_t qkv = (c.num_heads + 2 * c.num_kv_heads) * d, q = c.num_heads * d;
  // The prompt's logits are computed for its last position only.
  const double linear_flops_per_token = 2.0 * L * (H * qkv + q * H + H * 2 * I + I * H);

  std::printf(
      "engine_cuda_bench on %s: %lld layers, hidden %lld, heads %lld/%lld x %lld, "
      "vocab %lld (float32)\n",
      engine.BackendName().c_str(), static_cast<long long>(L), static_cast<long long>(H),
      static_cast<long long>(c.num_heads), static_cast<long long>(c.num_kv_heads),
      static_cast<long long>(d), static_cast<long long>(c.vocab_size));
  std::printf("%10s %14s %12s %16s\n", "tokens", "prefill tok/s", "TFLOP/s", "decode ms/token");
  for (int64_t n : lengths) {
    std::vector<sf::TokenId> prompt(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      prompt[static_cast<size_t>(i)] = static_cast<sf::TokenId>((i * 7919) % c.vocab_size);
    }
    double best = 1e30;
    for (int r = 0; r < repeats; ++r) {
      engine.Reset();
      const auto start = Clock::now();
      auto logits = engine.Prefill(prompt);
      const double t = Seconds(start, Clock::now());
      if (!logits.ok()) return Fail(logits.status());
      best = std::min(best, t);
    }
    constexpr int kDecodeSteps = 32;
    const auto decode_start = Clock::now();
    for (int i = 0; i < kDecodeSteps; ++i) {
      auto logits = engine.Decode(static_cast<sf::TokenId>(i + 1));
      if (!logits.ok()) return Fail(logits.status());
    }
    const double decode_ms = 1e3 * Seconds(decode_start, Clock::now()) / kDecodeSteps;
    const double nn = static_cast<double>(n);
    // QK^T and PV over the causal half, per query head.
    const double attention_flops = 2.0 * 2.0 * L * c.num_heads * d * nn * (nn + 1) / 2;
    const double tflops =
        (linear_flops_per_token * nn + 2.0 * H * c.vocab_size + attention_flops) / best / 1e12;
    std::printf("%10lld %14.0f %12.2f %16.3f\n", static_cast<long long>(n), nn / best, tflops,
                decode_ms);
  }
  return 0;
}
