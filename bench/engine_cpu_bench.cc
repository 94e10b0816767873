// CPU backend prefill throughput against the machine's GEMM rate: builds a ~10M
// parameter Llama-shaped model, times a prefill of --tokens tokens, then times the
// engine's GEMM backend (worker/model/gemm.h) on the same shapes (the linear layers, and QK^T / PV
// of causal attention counted at half) split over the same number of threads. The engine should
// take at most 2x the GEMM time.
//
//   engine_cpu_bench [--tokens 4096] [--threads N] [--repeats 2]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "worker/model/engine.h"
#include "worker/model/gemm.h"
#include "worker/model/tiny_model.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Time of Y[m][n] = X[m][k] W[n][k]^T with rows of X split over `threads` threads:
// the best of `repeats` runs.
double TimeGemm(int64_t m, int64_t k, int64_t n, int threads, int repeats) {
  std::vector<float> x(static_cast<size_t>(m * k)), w(static_cast<size_t>(n * k)),
      y(static_cast<size_t>(m * n));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 13) * 0.01f;
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 7) * 0.01f;
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    std::vector<std::thread> pool;
    const int64_t chunk = (m + threads - 1) / threads;
    for (int t = 0; t < threads; ++t) {
      const int64_t r0 = t * chunk, r1 = std::min(m, r0 + chunk);
      if (r0 >= r1) break;
      pool.emplace_back([&, r0, r1] {
        sf::model::GemmNT(r1 - r0, n, k, x.data() + r0 * k, k, w.data(), k, y.data() + r0 * n, n,
                          /*accumulate=*/false);
      });
    }
    for (auto& t : pool) t.join();
    best = std::min(best, Seconds(start, Clock::now()));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t tokens = 4096;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int repeats = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--tokens")) tokens = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--repeats")) repeats = std::atoi(argv[i + 1]);
  }
  sf::model::TinyModelOptions o;
  o.vocab_size = 8192;
  o.hidden_size = 256;
  o.intermediate_size = 1024;
  o.num_layers = 6;
  o.num_heads = 4;
  o.num_kv_heads = 2;
  o.max_position_embeddings = 1 << 20;
  o.dtype = sf::model::DType::kBF16;
  const std::string dir =
      (std::filesystem::temp_directory_path() / "sf_engine_cpu_bench_model").string();
  if (absl::Status s = sf::model::WriteTinyModel(dir, o); !s.ok()) {
    std::fprintf(stderr, "writing the model: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  sf::model::EngineOptions eo;
  eo.num_threads = threads;
  eo.reserve_tokens = tokens;
  auto engine = sf::model::CreateEngine(dir, eo);
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", std::string(engine.status().message()).c_str());
    return 1;
  }
  const sf::model::ModelConfig& c = (*engine)->config();
  std::vector<sf::TokenId> prompt(static_cast<size_t>(tokens));
  for (int64_t i = 0; i < tokens; ++i)
    prompt[i] = static_cast<sf::TokenId>((i * 7919) % c.vocab_size);

  double engine_best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    (*engine)->Reset();
    const auto start = Clock::now();
    auto logits = (*engine)->Prefill(prompt);
    const double t = Seconds(start, Clock::now());
    if (!logits.ok()) {
      std::fprintf(stderr, "%s\n", std::string(logits.status().message()).c_str());
      return 1;
    }
    engine_best = std::min(engine_best, t);
  }

  // Decode after the prompt: 32 steps with a KV cache of `tokens` rows.
  const auto decode_start = Clock::now();
  constexpr int kDecodeSteps = 32;
  for (int i = 0; i < kDecodeSteps; ++i) {
    if (!(*engine)->Decode(static_cast<sf::TokenId>(i + 1)).ok()) return 1;
  }
  const double decode_seconds = Seconds(decode_start, Clock::now());

  const int64_t H = c.hidden_size, d = c.head_dim, I = c.intermediate_size, L = c.num_layers;
  const int64_t qkv = (c.num_heads + 2 * c.num_kv_heads) * d, q = c.num_heads * d;
  const double n = static_cast<double>(tokens);
  double gemm = 0;
  gemm += L * TimeGemm(tokens, H, qkv, threads, repeats);
  gemm += L * TimeGemm(tokens, q, H, threads, repeats);
  gemm += L * TimeGemm(tokens, H, 2 * I, threads, repeats);
  gemm += L * TimeGemm(tokens, I, H, threads, repeats);
  // Causal attention: QK^T and PV over the full square, half of it needed.
  const double attn_square =
      TimeGemm(tokens, d, tokens, threads, 1) + TimeGemm(tokens, tokens, d, threads, 1);
  gemm += 0.5 * attn_square * static_cast<double>(L * c.num_heads);
  const double linear_flops = 2.0 * n * static_cast<double>(L * (H * qkv + q * H + 3 * H * I));
  const double attn_flops = 4.0 * static_cast<double>(L * c.num_heads * d) * n * (n + 1) / 2;
  const double flops = linear_flops + attn_flops;

  std::printf("engine_cpu_bench: %s, %lld parameters, %lld tokens, %d threads\n",
              (*engine)->BackendName().c_str(), static_cast<long long>(c.NumParameters()),
              static_cast<long long>(tokens), threads);
  std::printf("GEMM backend: %s\n", sf::model::GemmBackendName().c_str());
  std::printf("%-34s %10s %12s\n", "what", "seconds", "GFLOP/s");
  std::printf("%-34s %10.3f %12.1f\n", "engine prefill", engine_best, flops / engine_best / 1e9);
  std::printf("%-34s %10.3f %12.1f\n", "GEMMs of the same shapes", gemm, flops / gemm / 1e9);
  std::printf("%-34s %10.2f\n", "ratio engine / GEMM (target <= 2)", engine_best / gemm);
  std::printf("%-34s %10.1f\n", "engine prefill tokens/s", n / engine_best);
  std::printf("%-34s %10.1f\n", "engine decode tokens/s (after L)", kDecodeSteps / decode_seconds);
  std::filesystem::remove_all(dir);
  return 0;
}
