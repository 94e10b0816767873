// Times the Hopper prefill kernels (kernels/cuda/attention/prefill.h) at the study's
// shapes and prints them against floors measured in the same run: the bf16 tensor-core
// rate (a cuBLAS 8192^3 GEMM) and the device copy bandwidth. Causal FLOPs are
// 4 * Hq * D * L (L + 1) / 2 (Q K^T and P V, 2 FLOPs per multiply-add, over the causal
// pairs); block-sparse FLOPs count the pairs of the kept blocks the same way.
//
//   attention_prefill_cuda_bench [--lengths 16384,32768] [--csv FILE] [--reps N] [--no-serial]
// The block-sparse mask (KeepBlock below) is integer arithmetic that
// deploy/bench/attention_peer.py repeats, so FlexAttention runs with the same mask.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/attention/prefill.h"

namespace {

#define BENCH_CHECK(call)                                                                        \
  do {                                                                                           \
    cudaError_t e_ = (call);                                                                     \
    if (e_ != cudaSuccess) {                                                                     \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                                              \
    }                                                                                            \
  } while (0)

void CheckStatus(const absl::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, std::string(s.message()).c_str());
    std::exit(1);
  }
}

// Fills a device bf16 buffer with normal values (a host block of 8M values repeated).
void FillRandom(__nv_bfloat16* dst, size_t n, uint32_t seed, float scale) {
  static std::vector<__nv_bfloat16> block;
  const size_t kBlock = size_t{1} << 23;
  block.resize(kBlock);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, scale);
  for (auto& x : block) x = __float2bfloat16(dist(rng));
  for (size_t off = 0; off < n; off += kBlock) {
    BENCH_CHECK(
        cudaMemcpy(dst + off, block.data(), std::min(kBlock, n - off) * 2, cudaMemcpyHostToDevice));
  }
}

// Median time in ms of `reps` runs after 2 warm-ups, with events.
template <typename F>
double MedianMs(int reps, F run) {
  cudaEvent_t a, b;
  BENCH_CHECK(cudaEventCreate(&a));
  BENCH_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < 2; ++i) run();
  BENCH_CHECK(cudaDeviceSynchronize());
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    BENCH_CHECK(cudaEventRecord(a));
    run();
    BENCH_CHECK(cudaEventRecord(b));
    BENCH_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    BENCH_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  BENCH_CHECK(cudaGetLastError());
  std::sort(t.begin(), t.end());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return t[t.size() / 2];
}

// bf16 GEMM rate (TFLOP/s) through cuBLAS, fp32 accumulation, random operands.
double MeasureGemmTflops() {
  const int n = 8192;
  __nv_bfloat16 *a, *b, *c;
  BENCH_CHECK(cudaMalloc(&a, size_t{n} * n * 2));
  BENCH_CHECK(cudaMalloc(&b, size_t{n} * n * 2));
  BENCH_CHECK(cudaMalloc(&c, size_t{n} * n * 2));
  FillRandom(a, size_t{n} * n, 1, 1.f);
  FillRandom(b, size_t{n} * n, 2, 1.f);
  cublasHandle_t h;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "cublasCreate failed\n");
    std::exit(1);
  }
  const float one = 1.f, zero = 0.f;
  const double ms = MedianMs(10, [&] {
    cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, CUDA_R_16BF, n, b, CUDA_R_16BF, n,
                 &zero, c, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  });
  cublasDestroy(h);
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  return 2.0 * n * n * double{n} / (ms * 1e-3) / 1e12;
}

// Device-to-device copy bandwidth (GB/s), bytes read plus bytes written.
double MeasureCopyGBs() {
  const size_t bytes = size_t{2} << 30;
  void *a, *b;
  BENCH_CHECK(cudaMalloc(&a, bytes));
  BENCH_CHECK(cudaMalloc(&b, bytes));
  BENCH_CHECK(cudaMemset(a, 1, bytes));
  const double ms = MedianMs(10, [&] { cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice); });
  cudaFree(a);
  cudaFree(b);
  return 2.0 * bytes / (ms * 1e-3) / 1e9;
}

// The block mask both this bench and the peer script use: query block b of head h keeps
// the diagonal block and each earlier key block c whose hash falls under 9 in 100
// (about 10% of the causal blocks at these lengths). Integer-only, so Python agrees.
bool KeepBlock(int h, int b, int c) {
  if (c == b) return true;
  if (c > b) return false;
  const uint32_t x = static_cast<uint32_t>(h * 1000003u + b * 7919u + c * 104729u) * 2654435761u;
  return (x >> 8) % 100 < 9;
}

struct Shape {
  int hq, hkv;
};

// A line pattern shared per KV head and its exact fraction of the causal pairs (a key
// both a column and on a diagonal of a row counts once).
struct Lines {
  std::vector<int32_t> columns, diagonals;
  double Fraction(int64_t len) const {
    double pairs = 0;
    for (int32_t c : columns) pairs += static_cast<double>(len - c);
    for (int32_t d : diagonals) pairs += static_cast<double>(len - d);
    for (int32_t c : columns)
      for (int32_t d : diagonals)
        if (c + static_cast<int64_t>(d) < len) pairs -= 1;
    return pairs / (0.5 * static_cast<double>(len) * (len + 1));
  }
};

// Streaming at ~10% of the causal pairs: 4 sink columns and a window of 5% of the length.
Lines StreamingLines(int64_t len) {
  Lines l;
  l.columns = {0, 1, 2, 3};
  for (int32_t d = 0; d < len / 20; ++d) l.diagonals.push_back(d);
  return l;
}

// vertical_slash-like: 4 sinks + 508 random columns; 64 local diagonals + 448 with
// offsets log-uniform in [64, len) (slashes cluster near the diagonal, as in the
// patterns MInference reports).
Lines VerticalSlashLines(int64_t len, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> key(0, static_cast<int32_t>(len) - 1);
  std::uniform_real_distribution<double> log_off(std::log(64.0), std::log(double(len)));
  Lines l;
  for (int32_t c = 0; c < 4; ++c) l.columns.push_back(c);
  while (l.columns.size() < 512) l.columns.push_back(key(rng));
  for (int32_t d = 0; d < 64; ++d) l.diagonals.push_back(d);
  while (l.diagonals.size() < 512) {
    l.diagonals.push_back(std::min<int32_t>(static_cast<int32_t>(std::exp(log_off(rng))),
                                            static_cast<int32_t>(len) - 1));
  }
  for (auto* v : {&l.columns, &l.diagonals}) {
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
  }
  return l;
}

// Median ms of PrefillLines with `lines` for every KV head.
double TimeLines(const sf::cuda::AttentionParams& p, const Lines& lines, int reps) {
  std::vector<int32_t> col_off{0}, cols, diag_off{0}, diags;
  for (int g = 0; g < p.num_kv_heads; ++g) {
    cols.insert(cols.end(), lines.columns.begin(), lines.columns.end());
    diags.insert(diags.end(), lines.diagonals.begin(), lines.diagonals.end());
    col_off.push_back(static_cast<int32_t>(cols.size()));
    diag_off.push_back(static_cast<int32_t>(diags.size()));
  }
  int32_t* dev[4];
  const std::vector<int32_t>* host[4] = {&col_off, &cols, &diag_off, &diags};
  for (int i = 0; i < 4; ++i) {
    BENCH_CHECK(cudaMalloc(&dev[i], host[i]->size() * 4));
    BENCH_CHECK(cudaMemcpy(dev[i], host[i]->data(), host[i]->size() * 4, cudaMemcpyHostToDevice));
  }
  sf::cuda::LineSelection sel;
  sel.heads.count = p.num_kv_heads;
  sel.column_offsets = dev[0];
  sel.columns = dev[1];
  sel.diagonal_offsets = dev[2];
  sel.diagonals = dev[3];
  const double ms = MedianMs(reps, [&] { CheckStatus(sf::cuda::PrefillLines(p, sel), "lines"); });
  for (int32_t* d : dev) cudaFree(d);
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> lengths = {16384, 32768, 65536, 131072};
  std::string csv_path;
  int reps = 5;
  bool serial = true;  // also time the serial schedule
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--lengths") {
      lengths.clear();
      std::string v = next();
      for (size_t p = 0; p < v.size();) {
        const size_t q = v.find(',', p);
        lengths.push_back(std::stoll(v.substr(p, q - p)));
        p = q == std::string::npos ? v.size() : q + 1;
      }
    } else if (arg == "--csv") {
      csv_path = next();
    } else if (arg == "--no-serial") {
      serial = false;
    } else if (arg == "--reps") {
      reps = std::stoi(next());
    } else {
      std::fprintf(stderr,
                   "usage: %s [--lengths L1,L2,...] [--csv FILE] [--reps N] [--no-serial]\n",
                   argv[0]);
      return arg == "--help" ? 0 : 2;
    }
  }
  cudaDeviceProp prop;
  BENCH_CHECK(cudaGetDeviceProperties(&prop, 0));
  const double gemm = MeasureGemmTflops();
  const double copy = MeasureCopyGBs();
  std::printf(
      "device %s, %d SMs; measured: bf16 GEMM %.0f TFLOP/s (cuBLAS 8192^3), copy %.0f GB/s\n",
      prop.name, prop.multiProcessorCount, gemm, copy);
  FILE* csv = csv_path.empty() ? nullptr : std::fopen(csv_path.c_str(), "w");
  if (csv) std::fprintf(csv, "kernel,hq,hkv,d,L,ms,tflops,floor_ms,kept_fraction\n");
  std::printf("%-6s %7s %9s %8s %9s %7s %9s | %9s %6s %9s %6s\n", "Hq/Hkv", "L", "dense ms",
              "TFLOP/s", "floor ms", "of flr", "serial ms", "bs10 ms", "kept", "kept*dns", "ratio");
  const int d = 128, block = 128;
  struct LineRow {
    int hq;
    int64_t len;
    double stream_ms, stream_kept, vs_ms, vs_kept, dense_ms;
  };
  std::vector<LineRow> line_rows;
  for (const Shape s : {Shape{28, 4}, Shape{64, 8}}) {
    for (const int64_t len : lengths) {
      __nv_bfloat16 *q, *k, *v, *o;
      const size_t q_n = size_t(len) * s.hq * d, kv_n = size_t(len) * s.hkv * d;
      BENCH_CHECK(cudaMalloc(&q, q_n * 2));
      BENCH_CHECK(cudaMalloc(&k, kv_n * 2));
      BENCH_CHECK(cudaMalloc(&v, kv_n * 2));
      BENCH_CHECK(cudaMalloc(&o, q_n * 2));
      FillRandom(q, q_n, 3, 1.5f);
      FillRandom(k, kv_n, 4, 1.f);
      FillRandom(v, kv_n, 5, 1.f);
      sf::cuda::AttentionParams p;
      p.q = q;
      p.q_row_stride = s.hq * d;
      p.q_head_stride = d;
      p.k = k;
      p.v = v;
      p.kv_head_stride = len * d;
      p.kv_row_stride = d;
      p.max_kv_length = len;
      p.num_queries = len;
      p.num_q_heads = s.hq;
      p.num_kv_heads = s.hkv;
      p.head_dim = d;
      p.softmax_scale = 1.f / std::sqrt(float(d));
      p.out = o;
      p.out_row_stride = s.hq * d;
      p.out_head_stride = d;
      const double causal_flops = 4.0 * s.hq * d * (0.5 * double(len) * (len + 1));
      const double dense_ms =
          MedianMs(reps, [&] { CheckStatus(sf::cuda::PrefillDense(p), "dense"); });
      const double serial_ms = !serial ? std::nan("") : MedianMs(reps, [&] {
        CheckStatus(sf::cuda::PrefillDense(p, sf::cuda::PrefillSchedule::kSerial), "serial");
      });
      const double floor_ms = causal_flops / (gemm * 1e12) * 1e3;

      // Block-sparse: lists per query head, ~10% of the causal blocks.
      const int nb = static_cast<int>((len + block - 1) / block);
      std::vector<int32_t> offsets{0}, blocks;
      double kept_pairs = 0, causal_pairs = 0;
      for (int h = 0; h < s.hq; ++h) {
        for (int b = 0; b < nb; ++b) {
          for (int c = 0; c <= b; ++c) {
            const double pairs = c == b ? 0.5 * block * (block + 1) : double(block) * block;
            causal_pairs += pairs;
            if (KeepBlock(h, b, c)) {
              blocks.push_back(c);
              kept_pairs += pairs;
            }
          }
          offsets.push_back(static_cast<int32_t>(blocks.size()));
        }
      }
      int32_t *d_off, *d_blocks;
      BENCH_CHECK(cudaMalloc(&d_off, offsets.size() * 4));
      BENCH_CHECK(cudaMalloc(&d_blocks, std::max<size_t>(1, blocks.size()) * 4));
      BENCH_CHECK(cudaMemcpy(d_off, offsets.data(), offsets.size() * 4, cudaMemcpyHostToDevice));
      BENCH_CHECK(cudaMemcpy(d_blocks, blocks.data(), blocks.size() * 4, cudaMemcpyHostToDevice));
      sf::cuda::BlockSelection sel;
      sel.heads.count = s.hq;
      sel.block = block;
      sel.num_query_blocks = nb;
      sel.offsets = d_off;
      sel.key_blocks = d_blocks;
      const double kept = kept_pairs / causal_pairs;
      const double bs_ms =
          MedianMs(reps, [&] { CheckStatus(sf::cuda::PrefillBlockSparse(p, sel), "blocks"); });
      const Lines stream = StreamingLines(len), vs = VerticalSlashLines(len, 9);
      const double stream_kept = stream.Fraction(len), vs_kept = vs.Fraction(len);
      const double stream_ms = TimeLines(p, stream, reps);
      const double vs_ms = TimeLines(p, vs, reps);
      line_rows.push_back({s.hq, len, stream_ms, stream_kept, vs_ms, vs_kept, dense_ms});
      std::printf("%2d/%-3d %7lld %9.2f %8.0f %9.2f %6.0f%% %9.2f | %9.2f %5.1f%% %9.2f %6.2f\n",
                  s.hq, s.hkv, static_cast<long long>(len), dense_ms, causal_flops / dense_ms / 1e9,
                  floor_ms, 100 * floor_ms / dense_ms, serial_ms, bs_ms, 100 * kept,
                  kept * dense_ms, bs_ms / (kept * dense_ms));
      std::fflush(stdout);
      if (csv) {
        std::fprintf(csv, "own_dense,%d,%d,%d,%lld,%.4f,%.1f,%.4f,1\n", s.hq, s.hkv, d,
                     static_cast<long long>(len), dense_ms, causal_flops / dense_ms / 1e9,
                     floor_ms);
        std::fprintf(csv, "own_dense_serial,%d,%d,%d,%lld,%.4f,%.1f,%.4f,1\n", s.hq, s.hkv, d,
                     static_cast<long long>(len), serial_ms, causal_flops / serial_ms / 1e9,
                     floor_ms);
        std::fprintf(csv, "own_streaming10,%d,%d,%d,%lld,%.4f,%.1f,%.4f,%.4f\n", s.hq, s.hkv, d,
                     static_cast<long long>(len), stream_ms,
                     stream_kept * causal_flops / stream_ms / 1e9, stream_kept * floor_ms,
                     stream_kept);
        std::fprintf(csv, "own_vslines,%d,%d,%d,%lld,%.4f,%.1f,%.4f,%.4f\n", s.hq, s.hkv, d,
                     static_cast<long long>(len), vs_ms, vs_kept * causal_flops / vs_ms / 1e9,
                     vs_kept * floor_ms, vs_kept);
        std::fprintf(csv, "own_blocks10,%d,%d,%d,%lld,%.4f,%.1f,%.4f,%.4f\n", s.hq, s.hkv, d,
                     static_cast<long long>(len), bs_ms, kept * causal_flops / bs_ms / 1e9,
                     kept * floor_ms, kept);
        std::fflush(csv);
      }
      cudaFree(d_off);
      cudaFree(d_blocks);
      cudaFree(q);
      cudaFree(k);
      cudaFree(v);
      cudaFree(o);
    }
  }
  std::printf("%-6s %7s | %10s %6s %6s | %10s %6s %6s\n", "Hq", "L", "stream ms", "kept", "ratio",
              "vslines ms", "kept", "ratio");
  for (const LineRow& r : line_rows) {
    std::printf("%-6d %7lld | %10.2f %5.1f%% %6.2f | %10.2f %5.1f%% %6.2f\n", r.hq,
                static_cast<long long>(r.len), r.stream_ms, 100 * r.stream_kept,
                r.stream_ms / (r.stream_kept * r.dense_ms), r.vs_ms, 100 * r.vs_kept,
                r.vs_ms / (r.vs_kept * r.dense_ms));
  }
  if (csv) std::fclose(csv);
  return 0;
}
