// Estimation time of each sparse prefill method's GPU selection (kernels/cuda/attention/
// select.h) at the shapes: batch 1, Hq 28 / Hkv 4, D 128, bf16, lengths 16K-128K,
// parameters for compression 10. Prints one row per (method, length): median time of the
// whole selection (estimation, top-k, lists), the reference's estimation FLOPs, the rate,
// and the selection's share of dense causal attention's FLOPs and of its time at an
// assumed dense rate (--dense-tflops, default 600: cuDNN SDPA's measured range on H100/H200).
//   attention_select_cuda_bench [--lengths 16384,32768,65536,131072] [--reps 10]
//                               [--methods vertical_slash,block_sparse,streaming,...]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/job.h"
#include "common/status.h"
#include "kernels/cuda/attention/select.h"
#include "kernels/cuda/attention/select_host.h"
#include "kernels/cuda/attention/select_line_mass.cuh"
#include "methods/registry.h"

namespace sf::cuda {
namespace {

#define CHECK_CUDA(call)                                               \
  do {                                                                 \
    cudaError_t e_ = (call);                                           \
    if (e_ != cudaSuccess) {                                           \
      std::fprintf(stderr, "%s: %s\n", #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                    \
    }                                                                  \
  } while (0)

constexpr int kHq = 28, kHkv = 4, kDim = 128;

struct Options {
  std::vector<int64_t> lengths = {16384, 32768, 65536, 131072};
  std::vector<std::string> methods = {"vertical_slash", "flexprefill",  "flexprefill_original",
                                      "xattention",     "block_sparse", "streaming"};
  int reps = 10;
  double dense_tflops = 600;
};

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--lengths") {
      o.lengths.clear();
      for (absl::string_view s : absl::StrSplit(value, ',')) {
        int64_t v;
        if (!absl::SimpleAtoi(s, &v) || v < 1) {
          std::fprintf(stderr, "--lengths: '%s' is not a positive integer\n",
                       std::string(s).c_str());
          std::exit(2);
        }
        o.lengths.push_back(v);
      }
    } else if (flag == "--methods") {
      o.methods = absl::StrSplit(value, ',');
    } else if (flag == "--reps") {
      if (!absl::SimpleAtoi(value, &o.reps) || o.reps < 1) {
        std::fprintf(stderr, "--reps: give a positive integer\n");
        std::exit(2);
      }
    } else if (flag == "--dense-tflops") {
      if (!absl::SimpleAtod(value, &o.dense_tflops) || o.dense_tflops <= 0) {
        std::fprintf(stderr, "--dense-tflops: give a positive number\n");
        std::exit(2);
      }
    } else {
      std::fprintf(stderr,
                   "usage: attention_select_cuda_bench [--lengths L,...] [--methods m,...] "
                   "[--reps N] [--dense-tflops R]\n");
      std::exit(2);
    }
  }
  return o;
}

// The parameters of `method` (a registry name, or flexprefill_original) at `len`.
absl::StatusOr<ParamMap> ParamsAt(const std::string& method, int64_t len) {
  ParamMap base;
  if (method == "block_sparse") base["block"] = int64_t{64};
  if (method == "flexprefill" || method == "flexprefill_original" || method == "xattention") {
    // Threshold methods have no closed-form mapping: their defaults.
    ParamMap m;
    if (method == "flexprefill_original") m["variant"] = std::string("original");
    return m;
  }
  return ParamsForCompression(method, base, 10.0, len);
}

// One method's GPU selection at one shape: what it needs, the call, and its estimation
// FLOPs given the query-aware head count (flexprefill's original variant; 0 otherwise).
struct GpuSelection {
  absl::StatusOr<SelectionSizes> sizes = absl::InvalidArgumentError("no GPU form");
  std::function<absl::Status(const SelectionBuffers&)> run;
  std::function<absl::StatusOr<double>(int64_t)> flops;
  bool mixed = false;  // head_kinds says which heads were query-aware
};

absl::StatusOr<GpuSelection> SelectionFor(const std::string& method, const ParamMap& params,
                                          const AttentionParams& attn) {
  GpuSelection g;
  if (method == "vertical_slash") {
    SF_ASSIGN_OR_RETURN(const kernels::VerticalSlashParams p,
                        kernels::VerticalSlashParamsFrom(params));
    g.sizes = VerticalSlashSelectSizes(attn, p);
    g.run = [attn, p](const SelectionBuffers& b) {
      return SelectVerticalSlash(attn, p, b).status();
    };
    g.flops = [attn, p](int64_t) { return EstimationFlops(attn, p); };
  } else if (method == "block_sparse") {
    SF_ASSIGN_OR_RETURN(const kernels::BlockSparseParams p, kernels::BlockSparseParamsFrom(params));
    g.sizes = BlockSparseSelectSizes(attn, p);
    g.run = [attn, p](const SelectionBuffers& b) { return SelectBlockSparse(attn, p, b).status(); };
    g.flops = [attn, p](int64_t) { return EstimationFlops(attn, p); };
  } else if (method == "flexprefill" || method == "flexprefill_original") {
    SF_ASSIGN_OR_RETURN(const kernels::FlexPrefillParams p, kernels::FlexPrefillParamsFrom(params));
    g.sizes = FlexPrefillSelectSizes(attn, p);
    g.run = [attn, p](const SelectionBuffers& b) {
      return p.original ? SelectFlexPrefillMixed(attn, p, b).status()
                        : SelectFlexPrefillLines(attn, p, b).status();
    };
    g.flops = [attn, p](int64_t aware) { return EstimationFlops(attn, p, aware); };
    g.mixed = p.original;
  } else if (method == "xattention") {
    SF_ASSIGN_OR_RETURN(const kernels::XAttentionParams p, kernels::XAttentionParamsFrom(params));
    g.sizes = XAttentionSelectSizes(attn, p);
    g.run = [attn, p](const SelectionBuffers& b) { return SelectXAttention(attn, p, b).status(); };
    g.flops = [attn, p](int64_t) { return EstimationFlops(attn, p); };
  } else if (method == "streaming") {
    SF_ASSIGN_OR_RETURN(const kernels::StreamingParams p, kernels::StreamingParamsFrom(params));
    g.sizes = StreamingSelectSizes(attn, p);
    g.run = [attn, p](const SelectionBuffers& b) { return SelectStreaming(attn, p, b).status(); };
    g.flops = [attn, p](int64_t) { return EstimationFlops(attn, p); };
  }
  return g;
}

// One allocation at the longest length; a shorter length uses the first rows of q and
// of each KV head's cache (capacity = the longest length).
struct Device {
  void* q = nullptr;
  void* k = nullptr;
  int64_t capacity = 0;
  int64_t len = 0;
};

AttentionParams Attn(const Device& dev) {
  AttentionParams a;
  a.q = dev.q;
  a.q_row_stride = int64_t{kHq} * kDim;
  a.q_head_stride = kDim;
  a.k = dev.k;
  a.v = dev.k;
  a.kv_head_stride = dev.capacity * kDim;
  a.kv_row_stride = kDim;
  a.max_kv_length = dev.len;
  a.num_queries = dev.len;
  a.num_q_heads = kHq;
  a.num_kv_heads = kHkv;
  a.head_dim = kDim;
  return a;
}

// Median milliseconds of `fn` over reps after two warm-up calls.
double TimeMs(const std::function<absl::Status()>& fn, int reps) {
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  for (int i = 0; i < 2; ++i) {
    const absl::Status s = fn();
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      std::exit(1);
    }
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<float> ms;
  for (int i = 0; i < reps; ++i) {
    CHECK_CUDA(cudaEventRecord(start));
    (void)fn();
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float t;
    CHECK_CUDA(cudaEventElapsedTime(&t, start, stop));
    ms.push_back(t);
  }
  CHECK_CUDA(cudaGetLastError());
  std::sort(ms.begin(), ms.end());
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms[ms.size() / 2];
}

struct Buffers {
  SelectionBuffers b;
  std::vector<void*> owned;
  void* Alloc(int64_t bytes) {
    if (bytes <= 0) return nullptr;
    void* p;
    CHECK_CUDA(cudaMalloc(&p, bytes));
    owned.push_back(p);
    return p;
  }
  explicit Buffers(const SelectionSizes& z) {
    b.workspace = Alloc(z.workspace_bytes);
    b.workspace_bytes = z.workspace_bytes;
    b.column_offsets = static_cast<int32_t*>(Alloc(4 * z.column_offsets));
    b.columns = static_cast<int32_t*>(Alloc(4 * z.columns));
    b.columns_capacity = z.columns;
    b.diagonal_offsets = static_cast<int32_t*>(Alloc(4 * z.diagonal_offsets));
    b.diagonals = static_cast<int32_t*>(Alloc(4 * z.diagonals));
    b.diagonals_capacity = z.diagonals;
    b.block_offsets = static_cast<int32_t*>(Alloc(4 * z.block_offsets));
    b.key_blocks = static_cast<int32_t*>(Alloc(4 * z.key_blocks));
    b.key_blocks_capacity = z.key_blocks;
    b.head_kinds = static_cast<int32_t*>(Alloc(4 * z.head_kinds));
  }
  ~Buffers() {
    for (void* p : owned) cudaFree(p);
  }
};

// A CSR output of the last timed call, checked on the host: offsets from 0 and
// monotone, each list sorted, unique, inside [0, limit). Returns "" or what is wrong, and
// adds the entries to *entries.
std::string CheckLists(const int32_t* offsets, const int32_t* items, int64_t lists, int64_t limit,
                       int64_t* entries) {
  if (offsets == nullptr || lists == 0) return "";
  std::vector<int32_t> off(lists + 1);
  CHECK_CUDA(cudaMemcpy(off.data(), offsets, 4 * (lists + 1), cudaMemcpyDeviceToHost));
  if (off[0] != 0) return "first offset not 0";
  for (int64_t i = 0; i < lists; ++i)
    if (off[i + 1] < off[i]) return "offsets not monotone";
  std::vector<int32_t> all(off[lists]);
  if (!all.empty()) {
    CHECK_CUDA(cudaMemcpy(all.data(), items, 4 * all.size(), cudaMemcpyDeviceToHost));
  }
  for (int64_t i = 0; i < lists; ++i) {
    for (int32_t x = off[i]; x < off[i + 1]; ++x) {
      if (all[x] < 0 || all[x] >= limit) return "entry out of range";
      if (x > off[i] && all[x] <= all[x - 1]) return "list not sorted/unique";
    }
  }
  *entries += off[lists];
  return "";
}

// One method at one length: sizes, buffers, timing. Returns false when it cannot run.
bool RunOne(const Options& o, const Device& dev, const std::string& method) {
  auto params = ParamsAt(method, dev.len);
  if (!params.ok()) {
    std::printf("%-22s %7lld  %s\n", method.c_str(), static_cast<long long>(dev.len),
                params.status().ToString().c_str());
    return false;
  }
  const AttentionParams attn = Attn(dev);
  absl::StatusOr<GpuSelection> sel = SelectionFor(method, *params, attn);
  absl::StatusOr<SelectionSizes> z = sel.ok() ? sel->sizes : sel.status();
  if (!z.ok()) {
    std::printf("%-22s %7lld  %s\n", method.c_str(), static_cast<long long>(dev.len),
                z.status().ToString().c_str());
    return false;
  }
  Buffers buf(*z);
  const double ms = TimeMs([&] { return sel->run(buf.b); }, o.reps);
  // flexprefill's original variant counts its query-aware heads' block scoring too.
  int64_t aware = 0;
  if (sel->mixed) {
    std::vector<int32_t> kinds(kHq);
    CHECK_CUDA(cudaMemcpy(kinds.data(), buf.b.head_kinds, 4 * kHq, cudaMemcpyDeviceToHost));
    for (int32_t k : kinds) aware += k == static_cast<int32_t>(HeadSelectionKind::kBlocks);
  }
  const double flops = sel->flops(aware).value_or(0);
  const double dense_flops = 4.0 * kDim * kHq * 0.5 * static_cast<double>(dev.len) * (dev.len + 1);
  const double dense_ms = dense_flops / (o.dense_tflops * 1e12) * 1e3;
  // The selection of the last timed call must be well formed at every length.
  int64_t entries = 0;
  std::string bad = CheckLists(buf.b.column_offsets, buf.b.columns, kHq, dev.len, &entries);
  if (bad.empty()) {
    bad = CheckLists(buf.b.diagonal_offsets, buf.b.diagonals, kHq, dev.len, &entries);
  }
  if (bad.empty() && z->block_offsets > 0) {
    bad =
        CheckLists(buf.b.block_offsets, buf.b.key_blocks, z->block_offsets - 1, dev.len, &entries);
  }
  std::printf("%-22s %7lld %9.3f %10.1f %9.1f %8.3f%% %8.2f%%  %s %lld entries\n", method.c_str(),
              static_cast<long long>(dev.len), ms, flops / 1e9,
              ms > 0 ? flops / (ms * 1e-3) / 1e12 : 0.0, 100.0 * flops / dense_flops,
              100.0 * ms / dense_ms, bad.empty() ? "lists ok" : bad.c_str(),
              static_cast<long long>(entries));
  return true;
}

// The tensor-core line-mass step of vertical_slash alone (both passes), last_q 256.
void RunLineMassAlone(const Options& o, const Device& dev) {
  const AttentionParams attn = Attn(dev);
  auto shape = select_internal::CheckPrefillShape(attn, "bench");
  if (!shape.ok()) return;
  select_internal::WorkspaceCarver count(nullptr);
  select_internal::LineMassWorkspace(*shape, 256, &count);
  void* ws;
  CHECK_CUDA(cudaMalloc(&ws, count.used()));
  select_internal::WorkspaceCarver carve(ws);
  const auto b = select_internal::LineMassWorkspace(*shape, 256, &carve);
  const double ms =
      TimeMs([&] { return select_internal::LaunchLineMass(attn, *shape, 256, b); }, o.reps);
  const double rows_ms = TimeMs(
      [&] { return select_internal::LaunchLineMassPass(attn, *shape, 256, b, false); }, o.reps);
  const double mma_flops = 2 * 2.0 * kHq * 256 * static_cast<double>(dev.len) * kDim;
  std::printf("%-22s %7lld %9.3f %10.1f %9.1f   (2 passes of q.k on tensor cores)\n",
              "  line mass alone", static_cast<long long>(dev.len), ms, mma_flops / 1e9,
              mma_flops / (ms * 1e-3) / 1e12);
  std::printf("%-22s %7lld %9.3f %10.1f %9.1f   (pass 1: row log-sum-exps)\n", "  line mass pass 1",
              static_cast<long long>(dev.len), rows_ms, mma_flops / 2e9,
              mma_flops / 2 / (rows_ms * 1e-3) / 1e12);
  cudaFree(ws);
}

// n bf16 values of a deterministic pseudo-Gaussian (sum of four uniforms, sd 1), in
// device memory at dst. Never zeros: zeros would time a different computation.
void FillBf16(void* dst, int64_t n, uint64_t seed) {
  std::vector<uint16_t> host(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < n; ++i) {
    float sum = 0;
    for (int j = 0; j < 4; ++j) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      sum += static_cast<float>(x >> 40) / 16777216.f;
    }
    const float v = (sum - 2.f) * 1.7320508f;
    uint32_t u;
    std::memcpy(&u, &v, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    host[i] = static_cast<uint16_t>(u >> 16);
  }
  CHECK_CUDA(cudaMemcpy(dst, host.data(), 2 * n, cudaMemcpyHostToDevice));
}

}  // namespace
}  // namespace sf::cuda

int main(int argc, char** argv) {
  using namespace sf::cuda;
  const Options o = ParseArgs(argc, argv);
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf(
      "device: %s, %d SMs; Hq %d Hkv %d D %d bf16, compression-10 parameters, median "
      "of %d; dense time at an assumed %.0f TFLOP/s\n",
      prop.name, prop.multiProcessorCount, kHq, kHkv, kDim, o.reps, o.dense_tflops);
  std::printf("%-22s %7s %9s %10s %9s %9s %9s\n", "method", "L", "ms", "est GFLOP", "TFLOP/s",
              "%dense F", "%dense t");
  Device dev;
  dev.capacity = *std::max_element(o.lengths.begin(), o.lengths.end());
  CHECK_CUDA(cudaMalloc(&dev.q, 2 * dev.capacity * kHq * kDim));
  CHECK_CUDA(cudaMalloc(&dev.k, 2 * dev.capacity * kHkv * kDim));
  FillBf16(dev.q, dev.capacity * kHq * kDim, 17);
  FillBf16(dev.k, dev.capacity * kHkv * kDim, 29);
  for (int64_t len : o.lengths) {
    dev.len = len;
    for (const std::string& m : o.methods) {
      RunOne(o, dev, m);
      if (m == "vertical_slash") RunLineMassAlone(o, dev);
    }
  }
  cudaFree(dev.q);
  cudaFree(dev.k);
  return 0;
}
