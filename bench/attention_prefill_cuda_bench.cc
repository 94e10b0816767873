// Times the Hopper prefill kernels (kernels/cuda/attention/prefill.h) at the study's
// shapes and prints them against floors measured in the same run: the bf16 tensor-core
// rate (a cuBLAS 8192^3 GEMM) and the device copy bandwidth. Causal FLOPs are
// 4 * Hq * D * L (L + 1) / 2 (Q K^T and P V, 2 FLOPs per multiply-add, over the causal
// pairs); block-sparse FLOPs count the pairs of the kept blocks the same way.
//
//   attention_prefill_cuda_bench [--lengths 16384,32768] [--shapes 28/4,64/8] [--csv FILE]
//                                [--reps N] [--no-serial] [--kernels dense,blocks,lines]
//                                [--timeout SECONDS] [--tile-orders dynamic,static]
// Every kernel's time is printed (and flushed) as soon as it is measured; a timed call
// that has not finished after --timeout seconds (default 30) ends the program with a
// line naming it, so a hang or a pathological case shows where it is.
// The block-sparse mask (KeepBlock below) is integer arithmetic that
// deploy/bench/attention_peer.py repeats, so FlexAttention runs with the same mask.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
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

// What is being timed and how long one call may take before the program gives up on it
// (a hung kernel cannot be cancelled; the line says which one).
std::string g_timing = "setup";
double g_timeout_s = 30;

// Waits for `done`, ending the program if it has not completed within g_timeout_s.
void WaitOrGiveUp(cudaEvent_t done) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const cudaError_t e = cudaEventQuery(done);
    if (e == cudaSuccess) return;
    if (e != cudaErrorNotReady) BENCH_CHECK(e);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (s > g_timeout_s) {
      std::printf("TIMEOUT: %s still running after %.0f s; giving up\n", g_timing.c_str(), s);
      std::fflush(stdout);
      std::_Exit(3);
    }
  }
}

// Median time in ms of `reps` runs after 2 warm-ups, with events.
template <typename F>
double MedianMs(int reps, F run) {
  cudaEvent_t a, b;
  BENCH_CHECK(cudaEventCreate(&a));
  BENCH_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < 2; ++i) run();
  BENCH_CHECK(cudaEventRecord(b));
  WaitOrGiveUp(b);
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    BENCH_CHECK(cudaEventRecord(a));
    run();
    BENCH_CHECK(cudaEventRecord(b));
    WaitOrGiveUp(b);
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
// offsets log-uniform in [64, max_offset) (slashes cluster near the diagonal, as in the
// patterns MInference reports; max_offset = len spreads them over every distance).
Lines VerticalSlashLines(int64_t len, int64_t max_offset, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> key(0, static_cast<int32_t>(len) - 1);
  std::uniform_real_distribution<double> log_off(std::log(64.0), std::log(double(max_offset)));
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

// The key tiles the kernel's line walk (kernels/cuda/attention/prefill_walk.cuh,
// LineWalk) visits for one query tile of 128 rows (query m_block of a length-`len`
// prefill), by kind: band tiles (some diagonal crosses them) that the lines cover whole,
// band tiles with bitmaps, and packed tiles of the columns outside the band tiles.
struct LineTiles {
  int64_t full = 0, masked = 0, gathered = 0;
  int64_t Total() const { return full + masked + gathered; }
};

LineTiles CountLineTiles(const Lines& l, int64_t len, int m_block) {
  LineTiles t;
  const int64_t pmin = int64_t{m_block} * 128, pmax = std::min(pmin + 127, len - 1);
  const auto& d = l.diagonals;
  const auto& c = l.columns;
  // Diagonals in [lo, hi].
  auto count_in = [](const std::vector<int32_t>& v, int64_t lo, int64_t hi) -> int64_t {
    if (hi < lo) return 0;
    return std::upper_bound(v.begin(), v.end(), hi) - std::lower_bound(v.begin(), v.end(), lo);
  };
  std::vector<bool> band(static_cast<size_t>(pmax / 128 + 1), false);
  for (int64_t tile = 0; tile <= pmax / 128; ++tile) {
    const int64_t key0 = tile * 128;
    const int64_t valid_lo = std::max<int64_t>(pmin - key0 - 127, 0), valid_hi = pmax - key0;
    const int64_t diags = count_in(d, valid_lo, valid_hi);
    if (diags == 0) continue;
    band[static_cast<size_t>(tile)] = true;
    const bool full = diags == valid_hi - valid_lo + 1 || count_in(c, key0, key0 + 127) == 128;
    ++(full ? t.full : t.masked);
  }
  int64_t outside = 0;
  for (int32_t col : c)
    if (col <= pmax && !band[static_cast<size_t>(col / 128)]) ++outside;
  t.gathered = (outside + 127) / 128;
  return t;
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

struct Options {
  std::vector<int64_t> lengths = {16384, 32768, 65536, 131072};
  std::vector<Shape> shapes = {{28, 4}, {64, 8}};
  std::set<std::string> kernels = {"dense", "blocks", "lines"};
  // Query tile orders (prefill.h, "Work balance"); the first is the one the line patterns
  // and the ratios use.
  std::vector<std::string> tile_orders = {"dynamic"};
  std::string csv_path;
  int reps = 5;
  bool serial = true;  // also time the serial schedule
};

std::vector<std::string> SplitCommas(const std::string& v) {
  std::vector<std::string> out;
  for (size_t p = 0; p <= v.size();) {
    const size_t q = std::min(v.find(',', p), v.size());
    if (q > p) out.push_back(v.substr(p, q - p));
    p = q + 1;
  }
  return out;
}

// Returns false (after a message) on a bad command line.
bool ParseOptions(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--no-serial") {
      o->serial = false;
      continue;
    }
    if (i + 1 >= argc) return false;
    const std::string v = argv[++i];
    if (arg == "--lengths") {
      o->lengths.clear();
      for (const std::string& x : SplitCommas(v)) o->lengths.push_back(std::stoll(x));
    } else if (arg == "--shapes") {
      o->shapes.clear();
      for (const std::string& x : SplitCommas(v)) {
        Shape s{};
        if (std::sscanf(x.c_str(), "%d/%d", &s.hq, &s.hkv) != 2 || s.hkv <= 0 ||
            s.hq % s.hkv != 0) {
          std::fprintf(stderr, "--shapes: '%s' is not HQ/HKV with HKV dividing HQ\n", x.c_str());
          return false;
        }
        o->shapes.push_back(s);
      }
    } else if (arg == "--kernels") {
      o->kernels.clear();
      for (const std::string& x : SplitCommas(v)) {
        if (x != "dense" && x != "blocks" && x != "lines") {
          std::fprintf(stderr, "--kernels: '%s' is not one of dense, blocks, lines\n", x.c_str());
          return false;
        }
        o->kernels.insert(x);
      }
    } else if (arg == "--tile-orders") {
      o->tile_orders = SplitCommas(v);
      for (const std::string& x : o->tile_orders) {
        if (x != "dynamic" && x != "static") {
          std::fprintf(stderr, "--tile-orders: '%s' is not dynamic or static\n", x.c_str());
          return false;
        }
      }
      if (o->tile_orders.empty()) return false;
    } else if (arg == "--csv") {
      o->csv_path = v;
    } else if (arg == "--reps") {
      o->reps = std::max(1, std::stoi(v));
    } else if (arg == "--timeout") {
      g_timeout_s = std::stod(v);
    } else {
      return false;
    }
  }
  return !o->lengths.empty() && !o->shapes.empty();
}

// The query tiles' work under the kernel's persistent schedule (kernels/cuda/attention/
// prefill_kernel.cuh: CTA c takes query tiles c, c + grid, ... in longest-first order) for
// key tiles of 128: `tiles(head, m_block)` is the key tiles a query tile visits. The CTA
// with the most key tiles bounds the time; with its count of query tiles, two runs (dense
// and sparse) give the cost of a key tile and the fixed cost of a query tile.
struct Schedule {
  int64_t total_tiles = 0;
  int64_t query_tiles = 0;
  int64_t max_cta_tiles = 0;    // key tiles of the busiest CTA
  int64_t max_cta_queries = 0;  // its query tiles
  double mean_cta_tiles = 0;
  double mean_cta_queries = 0;
};

template <typename Tiles>
Schedule Simulate(int hq, int64_t len, int num_sms, Tiles tiles) {
  const int nmb = static_cast<int>((len + 127) / 128);
  const int64_t n = int64_t{nmb} * hq;
  const int grid = static_cast<int>(std::min<int64_t>(n, num_sms));
  std::vector<int64_t> cta_tiles(grid, 0), cta_queries(grid, 0);
  Schedule s;
  for (int64_t index = 0; index < n; ++index) {
    const int m_block = nmb - 1 - static_cast<int>(index / hq);
    const int head = static_cast<int>(index % hq);
    const int64_t t = tiles(head, m_block);
    cta_tiles[index % grid] += t;
    cta_queries[index % grid] += 1;
    s.total_tiles += t;
  }
  s.query_tiles = n;
  const auto busiest = std::max_element(cta_tiles.begin(), cta_tiles.end()) - cta_tiles.begin();
  s.max_cta_tiles = cta_tiles[busiest];
  s.max_cta_queries = cta_queries[busiest];
  s.mean_cta_tiles = static_cast<double>(s.total_tiles) / grid;
  s.mean_cta_queries = static_cast<double>(n) / grid;
  return s;
}

// The block-sparse case: per query head lists of ~10% of the causal 128-blocks.
struct BlockCase {
  std::vector<int32_t> offsets{0}, blocks;
  std::vector<int32_t> row_counts;  // [head][query block]
  double kept = 0;
};

BlockCase MakeBlockCase(int hq, int64_t len, int block) {
  BlockCase bc;
  const int nb = static_cast<int>((len + block - 1) / block);
  double kept_pairs = 0, causal_pairs = 0;
  for (int h = 0; h < hq; ++h) {
    for (int b = 0; b < nb; ++b) {
      int32_t count = 0;
      for (int c = 0; c <= b; ++c) {
        const double pairs = c == b ? 0.5 * block * (block + 1) : double(block) * block;
        causal_pairs += pairs;
        if (KeepBlock(h, b, c)) {
          bc.blocks.push_back(c);
          kept_pairs += pairs;
          ++count;
        }
      }
      bc.offsets.push_back(static_cast<int32_t>(bc.blocks.size()));
      bc.row_counts.push_back(count);
    }
  }
  bc.kept = kept_pairs / causal_pairs;
  return bc;
}

double TimeBlocks(const sf::cuda::AttentionParams& p, const BlockCase& bc, int64_t len, int block,
                  int reps) {
  int32_t *d_off, *d_blocks;
  BENCH_CHECK(cudaMalloc(&d_off, bc.offsets.size() * 4));
  BENCH_CHECK(cudaMalloc(&d_blocks, std::max<size_t>(1, bc.blocks.size()) * 4));
  BENCH_CHECK(cudaMemcpy(d_off, bc.offsets.data(), bc.offsets.size() * 4, cudaMemcpyHostToDevice));
  BENCH_CHECK(cudaMemcpy(d_blocks, bc.blocks.data(), bc.blocks.size() * 4, cudaMemcpyHostToDevice));
  sf::cuda::BlockSelection sel;
  sel.heads.count = p.num_q_heads;
  sel.block = block;
  sel.num_query_blocks = static_cast<int>((len + block - 1) / block);
  sel.offsets = d_off;
  sel.key_blocks = d_blocks;
  const double ms =
      MedianMs(reps, [&] { CheckStatus(sf::cuda::PrefillBlockSparse(p, sel), "blocks"); });
  cudaFree(d_off);
  cudaFree(d_blocks);
  return ms;
}

// Device buffers and parameters of one (shape, length) case, random bf16 inputs.
struct Problem {
  __nv_bfloat16 *q = nullptr, *k = nullptr, *v = nullptr, *o = nullptr;
  sf::cuda::AttentionParams p;
  Problem(const Shape& s, int64_t len, int d) {
    const size_t q_n = size_t(len) * s.hq * d, kv_n = size_t(len) * s.hkv * d;
    BENCH_CHECK(cudaMalloc(&q, q_n * 2));
    BENCH_CHECK(cudaMalloc(&k, kv_n * 2));
    BENCH_CHECK(cudaMalloc(&v, kv_n * 2));
    BENCH_CHECK(cudaMalloc(&o, q_n * 2));
    FillRandom(q, q_n, 3, 1.5f);
    FillRandom(k, kv_n, 4, 1.f);
    FillRandom(v, kv_n, 5, 1.f);
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
  }
  ~Problem() {
    cudaFree(q);
    cudaFree(k);
    cudaFree(v);
    cudaFree(o);
  }
};

struct Floors {
  double gemm_tflops, copy_gbs;
  int num_sms;
};

void CsvRow(FILE* csv, const char* kernel, const Shape& s, int d, int64_t len, double ms,
            double flops, double floor_ms, double kept) {
  if (csv == nullptr || std::isnan(ms)) return;
  std::fprintf(csv, "%s,%d,%d,%d,%lld,%.4f,%.1f,%.4f,%.4f\n", kernel, s.hq, s.hkv, d,
               static_cast<long long>(len), ms, flops / ms / 1e9, floor_ms, kept);
  std::fflush(csv);
}

// One case's fixed parts: labels, FLOPs and floors.
struct Case {
  Shape s;
  int64_t len;
  int d = 128, block = 128;
  char label[64];
  double causal_flops, floor_ms;
};

// Dense (and the serial schedule) under the current tile order; returns the dense time.
double RunDense(const Options& o, const Case& c, const sf::cuda::AttentionParams& p,
                const std::string& order, FILE* csv) {
  const std::string tag = order == "dynamic" ? "" : "_" + order;
  g_timing = std::string(c.label) + " dense " + order;
  const double dense_ms =
      MedianMs(o.reps, [&] { CheckStatus(sf::cuda::PrefillDense(p), "dense"); });
  std::printf("%-14s dense %-7s %9.3f ms %5.0f TFLOP/s %4.0f%% of floor (%.3f ms)\n", c.label,
              order.c_str(), dense_ms, c.causal_flops / dense_ms / 1e9, 100 * c.floor_ms / dense_ms,
              c.floor_ms);
  std::fflush(stdout);
  CsvRow(csv, ("own_dense" + tag).c_str(), c.s, c.d, c.len, dense_ms, c.causal_flops, c.floor_ms,
         1);
  if (o.serial && order == "dynamic") {
    g_timing = std::string(c.label) + " dense serial";
    const double serial_ms = MedianMs(o.reps, [&] {
      CheckStatus(sf::cuda::PrefillDense(p, sf::cuda::PrefillSchedule::kSerial), "serial");
    });
    std::printf("%-14s serial        %9.3f ms %5.0f TFLOP/s\n", c.label, serial_ms,
                c.causal_flops / serial_ms / 1e9);
    std::fflush(stdout);
    CsvRow(csv, "own_dense_serial", c.s, c.d, c.len, serial_ms, c.causal_flops, c.floor_ms, 1);
  }
  return dense_ms;
}

// Block-sparse at ~10% under the current tile order, with where the time goes: the CTA
// that bounds the time (static order: the busiest of the fixed assignment; dynamic: the
// mean) has some key tiles and query tiles in the dense and in the sparse run; solving
// t = a * tiles + b * queries for the two gives the cost of a key tile and the fixed cost
// of a query tile (b > 0: a cost dense amortises over ~10x more key tiles).
void RunBlocks(const Options& o, const Floors& f, const Case& c, const sf::cuda::AttentionParams& p,
               const BlockCase& bc, double dense_ms, const std::string& order, FILE* csv) {
  const int nb = static_cast<int>((c.len + c.block - 1) / c.block);
  const Schedule dense_sched =
      Simulate(c.s.hq, c.len, f.num_sms, [](int, int m_block) { return int64_t{m_block} + 1; });
  const Schedule bs_sched = Simulate(c.s.hq, c.len, f.num_sms, [&](int h, int m_block) {
    return int64_t{bc.row_counts[static_cast<size_t>(h) * nb + m_block]};
  });
  g_timing = std::string(c.label) + " blocks10 " + order;
  const double bs_ms = TimeBlocks(p, bc, c.len, c.block, o.reps);
  std::printf("%-14s blocks %-7s %8.3f ms kept %.1f%%, kept x dense %.3f ms, ratio %.2f\n", c.label,
              order.c_str(), bs_ms, 100 * bc.kept, bc.kept * dense_ms,
              bs_ms / (bc.kept * dense_ms));
  const bool fixed = order == "static";
  const double a11 = fixed ? dense_sched.max_cta_tiles : dense_sched.mean_cta_tiles;
  const double a12 = fixed ? dense_sched.max_cta_queries : dense_sched.mean_cta_queries;
  const double a21 = fixed ? bs_sched.max_cta_tiles : bs_sched.mean_cta_tiles;
  const double a22 = fixed ? bs_sched.max_cta_queries : bs_sched.mean_cta_queries;
  const double det = a11 * a22 - a12 * a21;
  const double per_tile = (dense_ms * a22 - a12 * bs_ms) / det * 1e3;
  const double per_query = (a11 * bs_ms - a21 * dense_ms) / det * 1e3;
  std::printf(
      "%-14s   schedule %s: key tiles dense %lld / blocks %lld; bounding CTA %.1f+%.1fq / "
      "%.1f+%.1fq (static busiest/mean %.3f dense, %.3f blocks); us per key tile %.2f dense, "
      "%.2f blocks; fit: %.2f us/key tile + %.2f us/query tile\n",
      c.label, order.c_str(), static_cast<long long>(dense_sched.total_tiles),
      static_cast<long long>(bs_sched.total_tiles), a11, a12, a21, a22,
      dense_sched.max_cta_tiles / dense_sched.mean_cta_tiles,
      bs_sched.max_cta_tiles / bs_sched.mean_cta_tiles, dense_ms * 1e3 / a11, bs_ms * 1e3 / a21,
      per_tile, per_query);
  std::fflush(stdout);
  const std::string tag = order == "dynamic" ? "" : "_" + order;
  CsvRow(csv, ("own_blocks10" + tag).c_str(), c.s, c.d, c.len, bs_ms, bc.kept * c.causal_flops,
         bc.kept * c.floor_ms, bc.kept);
}

// Where a line pattern's time goes: the key tiles its walk visits (by kind, summed over
// the query tiles of every head), its time per key tile on the mean CTA of the dynamic
// order beside dense's, and the tile floor: its tiles at dense's cost per tile. Time near
// the floor is tile-bound (fewer tiles would need a different tiling); far above it, the
// walk or the masks cost more than the tensor cores.
void PrintLineTiles(const Floors& f, const Case& c, const char* name, const Lines& lines, double ms,
                    double dense_ms) {
  const int nmb = static_cast<int>((c.len + 127) / 128);
  std::vector<LineTiles> per_m(static_cast<size_t>(nmb));
  LineTiles sum;
  for (int m = 0; m < nmb; ++m) {
    per_m[m] = CountLineTiles(lines, c.len, m);
    sum.full += per_m[m].full * c.s.hq;
    sum.masked += per_m[m].masked * c.s.hq;
    sum.gathered += per_m[m].gathered * c.s.hq;
  }
  const Schedule dense_sched =
      Simulate(c.s.hq, c.len, f.num_sms, [](int, int m_block) { return int64_t{m_block} + 1; });
  const Schedule line_sched =
      Simulate(c.s.hq, c.len, f.num_sms, [&](int, int m_block) { return per_m[m_block].Total(); });
  const double dense_us = dense_ms * 1e3 / dense_sched.mean_cta_tiles;
  const double floor_ms = line_sched.mean_cta_tiles * dense_us * 1e-3;
  std::printf(
      "%-14s   %s tiles: band full %lld, masked %lld, gathered %lld = %.1f%% of dense's %lld; "
      "us per key tile %.2f (dense %.2f); tile floor %.3f ms, time/floor %.2f\n",
      c.label, name, static_cast<long long>(sum.full), static_cast<long long>(sum.masked),
      static_cast<long long>(sum.gathered), 100.0 * sum.Total() / dense_sched.total_tiles,
      static_cast<long long>(dense_sched.total_tiles), ms * 1e3 / line_sched.mean_cta_tiles,
      dense_us, floor_ms, ms / floor_ms);
}

// Times the chosen kernels at one shape and length, printing each figure as it comes.
void RunCase(const Options& o, const Floors& f, const Shape& s, int64_t len, FILE* csv) {
  Case c;
  c.s = s;
  c.len = len;
  std::snprintf(c.label, sizeof(c.label), "%d/%d L=%lld", s.hq, s.hkv, static_cast<long long>(len));
  const char* label = c.label;
  const int d = c.d;
  const auto wall0 = std::chrono::steady_clock::now();
  Problem pb(s, len, d);
  const sf::cuda::AttentionParams& p = pb.p;
  c.causal_flops = 4.0 * s.hq * d * (0.5 * double(len) * (len + 1));
  c.floor_ms = c.causal_flops / (f.gemm_tflops * 1e12) * 1e3;
  const double causal_flops = c.causal_flops, floor_ms = c.floor_ms;
  double dense_ms = std::nan("");
  const BlockCase bc = MakeBlockCase(s.hq, len, c.block);
  for (const std::string& order : o.tile_orders) {
    setenv("SF_PREFILL_TILE_ORDER", order.c_str(), 1);
    double ms = std::nan("");
    if (o.kernels.count("dense")) ms = RunDense(o, c, p, order, csv);
    if (order == o.tile_orders[0]) dense_ms = ms;
    if (o.kernels.count("blocks")) RunBlocks(o, f, c, p, bc, ms, order, csv);
  }
  setenv("SF_PREFILL_TILE_ORDER", o.tile_orders[0].c_str(), 1);
  if (o.kernels.count("lines")) {
    const Lines stream = StreamingLines(len), vs = VerticalSlashLines(len, len, 9);
    const double stream_kept = stream.Fraction(len), vs_kept = vs.Fraction(len);
    g_timing = std::string(label) + " streaming10";
    const double stream_ms = TimeLines(p, stream, o.reps);
    std::printf("%-14s streaming  %9.3f ms kept %.1f%%, ratio %.2f\n", label, stream_ms,
                100 * stream_kept, stream_ms / (stream_kept * dense_ms));
    PrintLineTiles(f, c, "streaming", stream, stream_ms, dense_ms);
    std::fflush(stdout);
    CsvRow(csv, "own_streaming10", s, d, len, stream_ms, stream_kept * causal_flops,
           stream_kept * floor_ms, stream_kept);
    g_timing = std::string(label) + " vslines";
    const double vs_ms = TimeLines(p, vs, o.reps);
    std::printf("%-14s vslines    %9.3f ms kept %.1f%%, ratio %.2f\n", label, vs_ms, 100 * vs_kept,
                vs_ms / (vs_kept * dense_ms));
    PrintLineTiles(f, c, "vslines", vs, vs_ms, dense_ms);
    std::fflush(stdout);
    CsvRow(csv, "own_vslines", s, d, len, vs_ms, vs_kept * causal_flops, vs_kept * floor_ms,
           vs_kept);
    // The same with every slash within 4,096 of the diagonal: few tiles, nearly all masked.
    const Lines near = VerticalSlashLines(len, 4096, 9);
    const double near_kept = near.Fraction(len);
    g_timing = std::string(label) + " vsnear";
    const double near_ms = TimeLines(p, near, o.reps);
    std::printf("%-14s vsnear     %9.3f ms kept %.1f%%, ratio %.2f\n", label, near_ms,
                100 * near_kept, near_ms / (near_kept * dense_ms));
    PrintLineTiles(f, c, "vsnear", near, near_ms, dense_ms);
    std::fflush(stdout);
    CsvRow(csv, "own_vsnear", s, d, len, near_ms, near_kept * causal_flops, near_kept * floor_ms,
           near_kept);
  }
  std::printf("%-14s (case wall %.1f s)\n", label,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseOptions(argc, argv, &o)) {
    std::fprintf(stderr,
                 "usage: %s [--lengths L1,L2,...] [--shapes 28/4,64/8] [--csv FILE] [--reps N] "
                 "[--no-serial] [--kernels dense,blocks,lines] [--timeout SECONDS] "
                 "[--tile-orders dynamic,static]\n",
                 argv[0]);
    return 2;
  }
  cudaDeviceProp prop;
  BENCH_CHECK(cudaGetDeviceProperties(&prop, 0));
  Floors f;
  f.num_sms = prop.multiProcessorCount;
  g_timing = "cuBLAS GEMM floor";
  f.gemm_tflops = MeasureGemmTflops();
  g_timing = "copy floor";
  f.copy_gbs = MeasureCopyGBs();
  std::printf(
      "device %s, %d SMs; measured: bf16 GEMM %.0f TFLOP/s (cuBLAS 8192^3), copy %.0f GB/s\n",
      prop.name, prop.multiProcessorCount, f.gemm_tflops, f.copy_gbs);
  std::fflush(stdout);
  FILE* csv = o.csv_path.empty() ? nullptr : std::fopen(o.csv_path.c_str(), "w");
  if (!o.csv_path.empty() && csv == nullptr) {
    std::fprintf(stderr, "--csv: cannot write %s\n", o.csv_path.c_str());
    return 2;
  }
  if (csv) std::fprintf(csv, "kernel,hq,hkv,d,L,ms,tflops,floor_ms,kept_fraction\n");
  for (const Shape& s : o.shapes) {
    for (const int64_t len : o.lengths) RunCase(o, f, s, len, csv);
  }
  if (csv) std::fclose(csv);
  return 0;
}
