// Decode attention on the GPU (kernels/cuda/attention/decode.h, quest.h): dense split-KV
// decode time, KV bytes read, achieved TB/s, and the floor (those bytes at the
// device-to-device copy bandwidth measured in the same run, read + write counted) for
// bf16 caches of head dim 128; then Quest at compression 10 (page 16, gqa_shared, token
// budget L / 10): one step = page scoring, top-k and the metadata of the appended row's
// page (one kernel) + sparse decode, and its speed-up over dense. The peer
// deploy/bench/decode_peer.py times PyTorch SDPA at the same shapes with the same
// columns. bench/NOTES.md holds the figures.
//
//   attention_decode_cuda_bench [--shapes 28/4,64/8] [--lengths 32768,65536,131072]
//                               [--batches 1,16] [--reps 20] [--pipelines registers] [--pdl 1]
//                               [--quest 10]
//
// --pipelines smem,registers (the split-KV main loop) and --pdl 0,1 (programmatic
// dependent launch off / on) list kernel variants to compare; Quest runs with the
// fastest dense variant; --quest sets its compression (0: skip Quest).
// Timing: CUDA events around 10 back-to-back calls (rotating over copies of the cache
// when one copy would fit in 4x the L2), median of --reps, after 3 warm-up calls.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bench/attention_decode_cuda_fill.h"
#include "kernels/cuda/attention/decode.h"
#include "kernels/cuda/attention/quest.h"

namespace {

struct Shape {
  int hq = 28;
  int hkv = 4;
};

struct Options {
  std::vector<Shape> shapes = {{28, 4}, {64, 8}};
  std::vector<int64_t> lengths = {32768, 65536, 131072};
  std::vector<int64_t> batches = {1, 16};
  std::vector<std::string> pipelines = {"registers"};
  std::vector<int64_t> pdl = {1};
  int reps = 20;
  double quest_compression = 10;  // 0: no Quest rows
};

constexpr int kDim = 128;
constexpr int kInner = 10;

#define BENCH_CUDA(call)                                                   \
  do {                                                                     \
    cudaError_t e_ = (call);                                               \
    if (e_ != cudaSuccess) {                                               \
      std::fprintf(stderr, "attention_decode_cuda_bench: %s: %s\n", #call, \
                   cudaGetErrorString(e_));                                \
      std::exit(1);                                                        \
    }                                                                      \
  } while (false)

bool ParseInts(const char* text, std::vector<int64_t>* out) {
  out->clear();
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(part, &v) || v < 0) return false;
    out->push_back(v);
  }
  return !out->empty();
}

bool ParseShapes(const char* text, std::vector<Shape>* out) {
  out->clear();
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    std::vector<absl::string_view> hk = absl::StrSplit(part, '/');
    Shape s;
    if (hk.size() != 2 || !absl::SimpleAtoi(hk[0], &s.hq) || !absl::SimpleAtoi(hk[1], &s.hkv) ||
        s.hkv < 1 || s.hq % s.hkv != 0) {
      return false;
    }
    out->push_back(s);
  }
  return !out->empty();
}

bool ParseOptions(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || i + 1 >= argc) return false;
    const char* v = argv[++i];
    bool ok = true;
    if (a == "--shapes") {
      ok = ParseShapes(v, &o->shapes);
    } else if (a == "--lengths") {
      ok = ParseInts(v, &o->lengths);
    } else if (a == "--batches") {
      ok = ParseInts(v, &o->batches);
    } else if (a == "--pipelines") {
      o->pipelines = absl::StrSplit(v, ',');
      for (const std::string& x : o->pipelines) ok = ok && (x == "smem" || x == "registers");
    } else if (a == "--pdl") {
      ok = ParseInts(v, &o->pdl);
    } else if (a == "--quest") {
      ok = absl::SimpleAtod(v, &o->quest_compression);
    } else if (a == "--reps") {
      o->reps = std::max(1, std::atoi(v));
    } else {
      ok = false;
    }
    if (!ok) return false;
  }
  return true;
}

template <typename F>
double MedianSeconds(int reps, F&& body) {
  cudaEvent_t start, stop;
  BENCH_CUDA(cudaEventCreate(&start));
  BENCH_CUDA(cudaEventCreate(&stop));
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    BENCH_CUDA(cudaEventRecord(start));
    body();
    BENCH_CUDA(cudaEventRecord(stop));
    BENCH_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    BENCH_CUDA(cudaEventElapsedTime(&ms, start, stop));
    t.push_back(ms * 1e-3);
  }
  BENCH_CUDA(cudaEventDestroy(start));
  BENCH_CUDA(cudaEventDestroy(stop));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Device-to-device copy bandwidth, bytes read + written per second, 1 GiB each way.
double CopyBandwidth() {
  const size_t n = size_t{1} << 30;
  void *a = nullptr, *b = nullptr;
  BENCH_CUDA(cudaMalloc(&a, n));
  BENCH_CUDA(cudaMalloc(&b, n));
  BENCH_CUDA(sf::bench::FillRandomBf16(a, static_cast<int64_t>(n / 2), 1, 1.0f));
  BENCH_CUDA(cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice));
  const double s =
      MedianSeconds(10, [&] { BENCH_CUDA(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice)); });
  BENCH_CUDA(cudaFree(a));
  BENCH_CUDA(cudaFree(b));
  return 2.0 * n / s;
}

// Copies of one decode problem (batch sequences, full caches of `length` rows).
struct Problem {
  std::vector<void*> buffers;
  std::vector<sf::cuda::AttentionParams> params;  // one per copy
  int64_t kv_bytes = 0;                           // bytes one call must read (K, V, q, out)
  void* workspace = nullptr;
  // Quest: metadata per copy, page lists and workspaces shared.
  std::vector<sf::cuda::QuestPages> quest;
  sf::cuda::QuestSelectArgs quest_args;
  int32_t* quest_offsets = nullptr;
  int32_t* quest_pages = nullptr;
  void* quest_select_ws = nullptr;
  int64_t quest_select_ws_bytes = 0;
  void* quest_decode_ws = nullptr;
  int64_t quest_decode_ws_bytes = 0;
  int64_t quest_bytes = 0;  // metadata + selected K/V rows one step reads

  ~Problem() {
    for (void* p : buffers) cudaFree(p);
    if (workspace != nullptr) cudaFree(workspace);
  }
};

void* DeviceAlloc(Problem* pr, size_t bytes) {
  void* p = nullptr;
  BENCH_CUDA(cudaMalloc(&p, bytes));
  pr->buffers.push_back(p);
  return p;
}

void BuildProblem(const Shape& s, int64_t batch, int64_t length, int64_t l2_bytes, Problem* pr) {
  const int64_t kv_elems = batch * s.hkv * length * kDim;
  const int64_t q_elems = batch * s.hq * kDim;
  pr->kv_bytes = 2 * kv_elems * 2 + 2 * q_elems * 2;
  const int copies =
      static_cast<int>(std::max<int64_t>(1, (4 * l2_bytes + pr->kv_bytes - 1) / pr->kv_bytes));
  for (int c = 0; c < copies; ++c) {
    sf::cuda::AttentionParams p;
    p.k = DeviceAlloc(pr, kv_elems * 2);
    p.v = DeviceAlloc(pr, kv_elems * 2);
    p.q = DeviceAlloc(pr, q_elems * 2);
    p.out = DeviceAlloc(pr, q_elems * 2);
    BENCH_CUDA(sf::bench::FillRandomBf16(const_cast<void*>(p.k), kv_elems, 10 + c, 1.0f));
    BENCH_CUDA(sf::bench::FillRandomBf16(const_cast<void*>(p.v), kv_elems, 20 + c, 1.0f));
    BENCH_CUDA(sf::bench::FillRandomBf16(const_cast<void*>(p.q), q_elems, 30 + c, 2.0f));
    p.q_head_stride = kDim;
    p.q_row_stride = s.hq * kDim;
    p.q_batch_stride = s.hq * kDim;
    p.kv_row_stride = kDim;
    p.kv_head_stride = length * kDim;
    p.kv_batch_stride = s.hkv * length * kDim;
    p.max_kv_length = length;
    p.num_queries = 1;
    p.num_q_heads = s.hq;
    p.num_kv_heads = s.hkv;
    p.head_dim = kDim;
    p.softmax_scale = 1.0f / std::sqrt(static_cast<float>(kDim));
    p.out_head_stride = kDim;
    p.out_row_stride = s.hq * kDim;
    p.out_batch_stride = s.hq * kDim;
    p.batch = static_cast<int32_t>(batch);
    pr->params.push_back(p);
  }
  // Workspace for the largest plan of the kernel variants under comparison.
  int64_t workspace_bytes = 0;
  for (const char* pipeline : {"smem", "registers"}) {
    setenv("SF_DECODE_PIPELINE", pipeline, 1);
    absl::StatusOr<sf::cuda::DecodePlan> plan = sf::cuda::PlanDenseDecode(pr->params[0]);
    if (!plan.ok()) {
      std::fprintf(stderr, "attention_decode_cuda_bench: %s\n",
                   std::string(plan.status().message()).c_str());
      std::exit(1);
    }
    workspace_bytes = std::max(workspace_bytes, plan->workspace_bytes);
  }
  if (workspace_bytes > 0) BENCH_CUDA(cudaMalloc(&pr->workspace, workspace_bytes));
  for (auto& p : pr->params) {
    p.workspace = pr->workspace;
    p.workspace_bytes = workspace_bytes;
  }

  BENCH_CUDA(cudaDeviceSynchronize());
}

void Check(const absl::Status& st) {
  if (!st.ok()) {
    std::fprintf(stderr, "attention_decode_cuda_bench: %s\n", std::string(st.message()).c_str());
    std::exit(1);
  }
}

// Metadata for every copy (built once, as after prefill) and the step's buffers.
void BuildQuest(const Shape& s, int64_t length, double compression, Problem* pr) {
  const int32_t page = 16;
  const int64_t max_pages = (length + page - 1) / page;
  pr->quest_args.budget_pages =
      std::max<int64_t>(1, static_cast<int64_t>(length / compression) / page);
  pr->quest_args.gqa_shared = true;
  pr->quest_args.update_last_page = true;
  const sf::cuda::AttentionParams& p0 = pr->params[0];
  const int64_t meta_bytes = sf::cuda::QuestPagesBytes(p0.batch, s.hkv, max_pages, kDim);
  for (const auto& p : pr->params) {
    sf::cuda::QuestPages q;
    q.page = page;
    q.max_pages = max_pages;
    q.min = DeviceAlloc(pr, meta_bytes);
    q.max = DeviceAlloc(pr, meta_bytes);
    Check(sf::cuda::QuestUpdatePages(p, q, length));
    pr->quest.push_back(q);
  }
  const int64_t lists = static_cast<int64_t>(p0.batch) * s.hkv;
  pr->quest_offsets = static_cast<int32_t*>(DeviceAlloc(pr, (lists + 1) * 4));
  pr->quest_pages =
      static_cast<int32_t*>(DeviceAlloc(pr, lists * (pr->quest_args.budget_pages + 1) * 4));
  pr->quest_select_ws_bytes = sf::cuda::QuestSelectWorkspaceBytes(p0, pr->quest[0], pr->quest_args);
  pr->quest_select_ws = DeviceAlloc(pr, pr->quest_select_ws_bytes);
  BENCH_CUDA(cudaMemset(pr->quest_select_ws, 0, pr->quest_select_ws_bytes));
  const int64_t max_rows = sf::cuda::QuestMaxSelectedRows(pr->quest[0], pr->quest_args);
  absl::StatusOr<sf::cuda::DecodePlan> plan =
      sf::cuda::PlanSparseDecode(p0, sf::cuda::ListHeads{s.hkv}, max_rows);
  Check(plan.status());
  pr->quest_decode_ws_bytes = plan->workspace_bytes;
  if (plan->workspace_bytes > 0) pr->quest_decode_ws = DeviceAlloc(pr, plan->workspace_bytes);
  const int64_t pages_scored = std::max<int64_t>(0, (length - 1) / page);
  pr->quest_bytes = lists * (pages_scored * 2 * kDim * 2 + max_rows * 2 * kDim * 2) +
                    2 * static_cast<int64_t>(p0.batch) * s.hq * kDim * 2;
  BENCH_CUDA(cudaDeviceSynchronize());
}

// One Quest step on copy i: `parts` 1 = page selection (scoring, top-k and the
// metadata of the appended row's page, one kernel), 2 = + sparse decode.
void RunQuest(const Problem& pr, int parts) {
  static size_t next = 0;
  const size_t i = next++ % pr.params.size();
  sf::cuda::AttentionParams p = pr.params[i];
  p.workspace = pr.quest_select_ws;
  p.workspace_bytes = pr.quest_select_ws_bytes;
  Check(sf::cuda::QuestSelectPages(p, pr.quest[i], pr.quest_args,
                                   {pr.quest_offsets, pr.quest_pages}));
  if (parts < 2) return;
  p.workspace = pr.quest_decode_ws;
  p.workspace_bytes = pr.quest_decode_ws_bytes;
  const sf::cuda::PageSelection sel{
      {p.num_kv_heads}, pr.quest[i].page, pr.quest_offsets, pr.quest_pages};
  Check(sf::cuda::PagedDecode(p, sel, sf::cuda::QuestMaxSelectedRows(pr.quest[i], pr.quest_args)));
}

// Kernel variants under comparison: the split-KV main loop (shared-memory cp.async
// pipeline or register double buffer) and programmatic dependent launch
// (kernels/cuda/attention/decode_split_kv_impl.cuh and pdl.cuh read these).
void SetVariant(const std::string& pipeline, int64_t pdl) {
  setenv("SF_DECODE_PIPELINE", pipeline.c_str(), 1);
  setenv("SF_DECODE_PDL", pdl != 0 ? "1" : "0", 1);
}

void RunDense(const Problem& pr) {
  static size_t next = 0;
  const absl::Status st = sf::cuda::DenseDecode(pr.params[next++ % pr.params.size()]);
  if (!st.ok()) {
    std::fprintf(stderr, "attention_decode_cuda_bench: %s\n", std::string(st.message()).c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseOptions(argc, argv, &o)) {
    std::fprintf(
        stderr,
        "usage: attention_decode_cuda_bench [--shapes 28/4,64/8] [--lengths "
        "32768,65536,131072] [--batches 1,16] [--reps 20] [--pipelines smem,registers] [--pdl 0,1] "
        "[--quest 10]\n");
    return 2;
  }
  cudaDeviceProp prop;
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  const double copy_bw = CopyBandwidth();
  std::printf("device %s, %d SMs, L2 %.0f MiB; D2D copy %.3f TB/s (read+write)\n", prop.name,
              prop.multiProcessorCount, prop.l2CacheSize / 1048576.0, copy_bw * 1e-12);
  if (o.quest_compression > 0) {
    std::printf(
        "quest rows: compression %.0f (page 16, gqa_shared); step = select (scores, top-k, "
        "metadata of the new row's page; one kernel) + paged decode\n"
        "quest shape batch L pages select_us decode_us step_us TB/s speedup\n",
        o.quest_compression);
  }
  std::printf("%-6s %5s %7s %4s %3s %9s %9s %7s %9s %6s %6s\n", "shape", "batch", "L", "pipe",
              "pdl", "time_us", "KV_MB", "TB/s", "floor_us", "frac", "splits");
  for (const Shape& s : o.shapes) {
    for (int64_t batch : o.batches) {
      for (int64_t length : o.lengths) {
        Problem pr;
        BuildProblem(s, batch, length, prop.l2CacheSize, &pr);
        double dense_s = 0;
        std::string best_pipe = o.pipelines[0];
        int64_t best_pdl = o.pdl[0];
        for (int64_t pdl : o.pdl) {
          for (const std::string& pipe : o.pipelines) {
            SetVariant(pipe, pdl);
            const absl::StatusOr<sf::cuda::DecodePlan> plan =
                sf::cuda::PlanDenseDecode(pr.params[0]);
            Check(plan.status());
            for (int w = 0; w < 3; ++w) RunDense(pr);
            BENCH_CUDA(cudaDeviceSynchronize());
            const double t = MedianSeconds(o.reps,
                                           [&] {
                                             for (int i = 0; i < kInner; ++i) RunDense(pr);
                                           }) /
                             kInner;
            BENCH_CUDA(cudaGetLastError());
            const double floor_s = pr.kv_bytes / copy_bw;
            std::printf("%2d/%-3d %5lld %7lld %4s %3lld %9.1f %9.1f %7.3f %9.1f %6.3f %6d\n", s.hq,
                        s.hkv, static_cast<long long>(batch), static_cast<long long>(length),
                        pipe.substr(0, 4).c_str(), static_cast<long long>(pdl), t * 1e6,
                        pr.kv_bytes / 1e6, pr.kv_bytes / t * 1e-12, floor_s * 1e6, floor_s / t,
                        plan->num_splits);
            std::fflush(stdout);
            if (dense_s == 0 || t < dense_s) {
              dense_s = t;
              best_pipe = pipe;
              best_pdl = pdl;
            }
          }
        }
        SetVariant(best_pipe, best_pdl);
        if (o.quest_compression <= 0) continue;
        BuildQuest(s, length, o.quest_compression, &pr);
        double tq[2];
        for (int parts = 1; parts <= 2; ++parts) {
          for (int w = 0; w < 3; ++w) RunQuest(pr, parts);
          BENCH_CUDA(cudaDeviceSynchronize());
          tq[parts - 1] = MedianSeconds(o.reps,
                                        [&] {
                                          for (int i = 0; i < kInner; ++i) RunQuest(pr, parts);
                                        }) /
                          kInner;
          BENCH_CUDA(cudaGetLastError());
        }
        // Printed as measured (prefix "quest"), so a run cut short keeps its rows.
        std::printf("quest %2d/%-3d %5lld %7lld %6lld %9.1f %9.1f %9.1f %7.3f %7.2f\n", s.hq, s.hkv,
                    static_cast<long long>(batch), static_cast<long long>(length),
                    static_cast<long long>(pr.quest_args.budget_pages), tq[0] * 1e6,
                    (tq[1] - tq[0]) * 1e6, tq[1] * 1e6, pr.quest_bytes / tq[1] * 1e-12,
                    dense_s / tq[1]);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
