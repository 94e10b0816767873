// Token-selection decode methods on the GPU against their CPU definitions: SnapKV and
// Ada-SnapKV kept rows (kernels::CompressKv) as sets, up to float32 near-ties checked
// against the CPU's float64 importance; compaction followed by dense decode against
// DecodeAttention("snapkv"); streaming and oracle_topk row lists feeding GatheredDecode
// against DecodeAttention("streaming" / "oracle_topk").
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/methods/snapkv.h"
#include "kernels/cpu/methods/testing/typed_params.h"
#include "kernels/cuda/attention/decode.h"
#include "kernels/cuda/attention/decode_select.h"
#include "kernels/cuda/attention/decode_test_util.h"
#include "kernels/cuda/attention/snapkv.h"

namespace sf::cuda {
namespace {

using testing::DecodeCase;
using testing::DeviceArray;
using testing::DeviceCase;
using testing::FromBf16;
using testing::HeadRows;
using testing::MakeCase;
using testing::ToBf16;

// The prompt's last `rows` queries, [rows][Hq][D] like the engine's, bf16 and float.
struct Observation {
  int rows = 0;
  std::vector<uint16_t> q;
  std::vector<float> q_f;
};

Observation MakeObservation(const DecodeCase& c, int rows, uint32_t seed, float scale) {
  Observation o;
  o.rows = rows;
  std::mt19937 rng(seed);
  std::normal_distribution<float> n01(0.0f, scale);
  o.q.resize(static_cast<size_t>(c.batch) * rows * c.hq() * c.dim);
  o.q_f.resize(o.q.size());
  for (size_t i = 0; i < o.q.size(); ++i) {
    o.q[i] = ToBf16(n01(rng));
    o.q_f[i] = FromBf16(o.q[i]);
  }
  return o;
}

// CPU views of sequence b: observation [Hq, rows, D] and prompt keys [Hkv, P, D].
kernels::TensorView ObsView(const DecodeCase& c, const Observation& o, int b) {
  return {o.q_f.data() + static_cast<size_t>(b) * o.rows * c.hq() * c.dim,
          c.hq(),
          o.rows,
          c.dim,
          c.dim,
          static_cast<int64_t>(c.hq()) * c.dim};
}
kernels::TensorView KeysView(const DecodeCase& c, int b, int64_t len) {
  return {&c.k_f[c.kv_index(b, 0, 0, 0)], c.hkv, len, c.dim, c.capacity * c.dim, c.dim};
}

struct GpuKept {
  std::vector<int32_t> offsets, rows;
};

// Runs SnapKvSelect on the whole case (every head holds its prompt).
GpuKept RunSnapKv(const DecodeCase& c, const Observation& o, const SnapKvArgs& args, DeviceCase* d,
                  DeviceArray<int32_t>* offsets, DeviceArray<int32_t>* rows) {
  DeviceArray<uint16_t> obs(o.q.size());
  EXPECT_EQ(obs.Upload(o.q), cudaSuccess);
  ObservationQueries oq;
  oq.q = obs.get();
  oq.rows = o.rows;
  oq.head_stride = c.dim;
  oq.row_stride = static_cast<int64_t>(c.hq()) * c.dim;
  oq.batch_stride = static_cast<int64_t>(o.rows) * c.hq() * c.dim;
  AttentionParams p = d->p;
  const int64_t ws = SnapKvWorkspaceBytes(p, oq, args);
  DeviceArray<char> workspace(ws);
  p.workspace = workspace.get();
  p.workspace_bytes = ws;
  const int lists = c.batch * c.hkv;
  *offsets = DeviceArray<int32_t>(lists + 1);
  *rows = DeviceArray<int32_t>(static_cast<size_t>(lists) * args.token_capacity);
  cudaMemset(offsets->get(), 0xff, (lists + 1) * 4);
  const absl::Status s = SnapKvSelect(p, oq, args, {offsets->get(), rows->get()});
  EXPECT_TRUE(s.ok()) << s;
  GpuKept k;
  EXPECT_EQ(offsets->Download(&k.offsets), cudaSuccess);
  EXPECT_EQ(rows->Download(&k.rows), cudaSuccess);
  return k;
}

kernels::SnapKvParams CpuParams(const SnapKvArgs& a) {
  kernels::SnapKvParams p;
  p.window = a.window;
  p.pool = a.pool;
  p.keep_first = a.keep_first;
  p.keep_last = a.keep_last;
  p.token_capacity = a.token_capacity;
  p.adaptive = a.adaptive;
  p.floor = a.floor;
  return p;
}

// (head, row) pairs kept by the GPU and by the CPU must be equal, except for pairs whose
// float64 importances are within 1e-5 (relative) of one another across the two sides.
void ExpectSameKept(const DecodeCase& c, const Observation& o, const SnapKvArgs& args,
                    const GpuKept& gpu, const std::string& what) {
  const kernels::SnapKvParams cp = CpuParams(args);
  for (int b = 0; b < c.batch; ++b) {
    const int64_t P = c.lengths[b * c.hkv];
    absl::StatusOr<kernels::KeptTokens> cpu = kernels::testing::CompressKvTyped(
        args.adaptive ? "ada_snapkv" : "snapkv", cp, ObsView(c, o, b), KeysView(c, b, P));
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    const auto importance = kernels::SnapKvImportance(cp, ObsView(c, o, b), KeysView(c, b, P));
    std::set<std::pair<int, int64_t>> only_gpu, only_cpu;
    for (int g = 0; g < c.hkv; ++g) {
      const int64_t list = static_cast<int64_t>(b) * c.hkv + g;
      ASSERT_TRUE(std::is_sorted(gpu.rows.begin() + gpu.offsets[list],
                                 gpu.rows.begin() + gpu.offsets[list + 1]))
          << what;
      for (int32_t x = gpu.offsets[list]; x < gpu.offsets[list + 1]; ++x)
        only_gpu.insert({g, gpu.rows[x]});
      for (int64_t r : cpu->per_kv_head[g]) {
        if (!only_gpu.erase({g, r})) only_cpu.insert({g, r});
      }
    }
    EXPECT_EQ(only_gpu.size(), only_cpu.size()) << what;
    for (const auto& a : only_gpu) {
      for (const auto& e : only_cpu) {
        const double ia = importance[a.first][a.second], ie = importance[e.first][e.second];
        EXPECT_LE(std::abs(ia - ie), 1e-5 * std::max(std::abs(ia), std::abs(ie)) + 1e-30)
            << what << ": GPU kept (" << a.first << ", " << a.second << ") importance " << ia
            << ", CPU (" << e.first << ", " << e.second << ") " << ie;
      }
    }
  }
}

TEST(SnapKvSelect, EveryGqaRatioAndHeadDim_EqualCompressKvAsSets) {
  struct Shape {
    int group, dim;
    int32_t prompt;
    int window, obs_rows, pool;
    int64_t capacity;
  };
  const Shape shapes[] = {{1, 128, 1000, 32, 40, 21, 200},
                          {4, 128, 4097, 256, 256, 21, 410},
                          {7, 128, 20011, 64, 70, 7, 2001},
                          {8, 64, 3000, 256, 300, 21, 600},
                          {4, 256, 2500, 100, 100, 21, 300}};
  uint32_t seed = 200;
  for (const Shape& s : shapes) {
    for (bool adaptive : {false, true}) {
      const DecodeCase c =
          MakeCase(2, 2, s.group, s.dim, {s.prompt, s.prompt, s.prompt, s.prompt}, seed++, 1.0f);
      const Observation o = MakeObservation(c, s.obs_rows, seed++, 2.0f);
      SnapKvArgs args;
      args.window = s.window;
      args.pool = s.pool;
      args.token_capacity = s.capacity;
      args.adaptive = adaptive;
      DeviceCase d;
      ASSERT_NO_FATAL_FAILURE(Upload(c, &d));
      DeviceArray<int32_t> offsets, rows;
      const GpuKept kept = RunSnapKv(c, o, args, &d, &offsets, &rows);
      ExpectSameKept(c, o, args, kept,
                     std::string(adaptive ? "ada_snapkv" : "snapkv") + " group " +
                         std::to_string(s.group) + " D " + std::to_string(s.dim) + " P " +
                         std::to_string(s.prompt));
    }
  }
}

TEST(SnapKvSelect, BadCapacity_InvalidArgumentNamingParameter) {
  const DecodeCase c = MakeCase(1, 2, 4, 128, {500, 500}, 300);
  DeviceCase d;
  ASSERT_NO_FATAL_FAILURE(Upload(c, &d));
  ObservationQueries oq;
  oq.q = d.q.get();
  oq.rows = 1;
  SnapKvArgs args;
  args.token_capacity = 600;
  EXPECT_NE(std::string(SnapKvSelect(d.p, oq, args, {}).message()).find("token_capacity"),
            std::string::npos);
  args.token_capacity = 100;  // below keep_first + keep_last = 132
  EXPECT_NE(std::string(SnapKvSelect(d.p, oq, args, {}).message()).find("keep_first"),
            std::string::npos);
}

// Prefill of P rows, SnapKV, compaction into a fresh cache, the first decode token
// appended after each head's kept rows, dense decode: equals the CPU's first decode step.
TEST(CompactKv, SnapKvThenDenseDecode_MatchesDecodeAttention) {
  for (bool adaptive : {false, true}) {
    const int32_t P = 5000;
    // Rows 0..P-1 are the prompt, row P the first generated token.
    const DecodeCase c = MakeCase(1, 2, 4, 128, {P + 1, P + 1}, adaptive ? 401 : 400, 2.0f);
    const Observation o = MakeObservation(c, 64, 402, 2.0f);
    SnapKvArgs args;
    args.window = 64;
    args.token_capacity = 700;
    args.adaptive = adaptive;
    DeviceCase d;
    ASSERT_NO_FATAL_FAILURE(Upload(c, &d));
    std::vector<int32_t> prompt_lengths(c.hkv, P);
    ASSERT_EQ(d.lengths.Upload(prompt_lengths), cudaSuccess);
    d.p.max_kv_length = P;
    DeviceArray<int32_t> offsets, rows;
    const GpuKept kept = RunSnapKv(c, o, args, &d, &offsets, &rows);
    DeviceArray<uint16_t> k2(c.k.size()), v2(c.v.size());
    DeviceArray<int32_t> len2(c.hkv);
    KeptRows kr{c.hkv, offsets.get(), rows.get()};
    ASSERT_TRUE(CompactKv(d.p, kr, k2.get(), v2.get(), len2.get()).ok());
    std::vector<int32_t> lengths;
    ASSERT_EQ(len2.Download(&lengths), cudaSuccess);
    // Append row P of each head after its kept rows.
    for (int g = 0; g < c.hkv; ++g) {
      ASSERT_EQ(lengths[g], kept.offsets[g + 1] - kept.offsets[g]);
      const size_t dst = c.kv_index(0, g, lengths[g], 0), src = c.kv_index(0, g, P, 0);
      ASSERT_EQ(cudaMemcpy(k2.get() + dst, c.k.data() + src, c.dim * 2, cudaMemcpyHostToDevice),
                cudaSuccess);
      ASSERT_EQ(cudaMemcpy(v2.get() + dst, c.v.data() + src, c.dim * 2, cudaMemcpyHostToDevice),
                cudaSuccess);
      ++lengths[g];
    }
    ASSERT_EQ(len2.Upload(lengths), cudaSuccess);
    AttentionParams p = d.p;
    p.k = k2.get();
    p.v = v2.get();
    p.kv_lengths = len2.get();
    p.max_kv_length = *std::max_element(lengths.begin(), lengths.end());
    absl::StatusOr<DecodePlan> plan = PlanDenseDecode(p);
    ASSERT_TRUE(plan.ok());
    DeviceArray<char> ws(std::max<int64_t>(1, plan->workspace_bytes));
    p.workspace = ws.get();
    p.workspace_bytes = plan->workspace_bytes;
    ASSERT_TRUE(DenseDecode(p).ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<uint16_t> bits;
    ASSERT_EQ(d.out.Download(&bits), cudaSuccess);
    // The CPU method: steps = 1 query at position P over P + 1 keys.
    kernels::AttentionInput in;
    in.q = {c.q_f.data(), c.hq(), 1, c.dim, c.dim, c.dim};
    in.k = KeysView(c, 0, P + 1);
    in.v = {&c.v_f[c.kv_index(0, 0, 0, 0)], c.hkv, P + 1, c.dim, c.capacity * c.dim, c.dim};
    in.q_offset = P;
    absl::StatusOr<kernels::AttentionResult> cpu = kernels::testing::DecodeAttentionTyped(
        adaptive ? "ada_snapkv" : "snapkv", CpuParams(args), in, ObsView(c, o, 0));
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    std::vector<double> out(bits.size()), ref(bits.size());
    std::vector<HeadRows> cpu_rows(1, HeadRows(c.hq()));
    std::vector<kernels::KeyRange> ranges;
    for (int h = 0; h < c.hq(); ++h) {
      cpu->selection->Row(h, 0, &ranges);
      for (const auto& r : ranges) {
        for (int64_t x = r.begin; x < r.end; ++x) cpu_rows[0][h].push_back(x);
      }
      for (int dd = 0; dd < c.dim; ++dd) {
        out[h * c.dim + dd] = FromBf16(bits[h * c.dim + dd]);
        ref[h * c.dim + dd] = cpu->output.Row(h, 0)[dd];
        ASSERT_TRUE(std::isfinite(out[h * c.dim + dd]));
      }
    }
    const double err = testing::RelativeError(out, ref);
    const double naive = testing::RelativeError(testing::NaiveDecode(c, cpu_rows), ref);
    EXPECT_LE(err, 2.0 * naive + 1e-5)
        << (adaptive ? "ada_snapkv" : "snapkv") << " naive " << naive;
  }
}

// Runs GatheredDecode over GPU row lists and compares with the CPU method's output.
void ExpectGatheredMatchesCpu(const DecodeCase& c, DeviceCase* d, const RowSelection& sel,
                              int64_t max_rows, const kernels::AttentionResult& cpu,
                              const std::string& what) {
  absl::StatusOr<DecodePlan> plan = PlanSparseDecode(d->p, sel.heads, max_rows);
  ASSERT_TRUE(plan.ok()) << plan.status();
  testing::AllocateWorkspace(*plan, d);
  ASSERT_TRUE(GatheredDecode(d->p, sel, max_rows).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<uint16_t> bits;
  ASSERT_EQ(d->out.Download(&bits), cudaSuccess);
  std::vector<double> out(bits.size()), ref(bits.size());
  std::vector<HeadRows> rows(1, HeadRows(c.hq()));
  std::vector<kernels::KeyRange> ranges;
  for (int h = 0; h < c.hq(); ++h) {
    cpu.selection->Row(h, 0, &ranges);
    for (const auto& r : ranges) {
      for (int64_t x = r.begin; x < r.end; ++x) rows[0][h].push_back(x);
    }
    for (int dd = 0; dd < c.dim; ++dd) {
      out[h * c.dim + dd] = FromBf16(bits[h * c.dim + dd]);
      ref[h * c.dim + dd] = cpu.output.Row(h, 0)[dd];
      ASSERT_TRUE(std::isfinite(out[h * c.dim + dd])) << what;
    }
  }
  const double err = testing::RelativeError(out, ref);
  const double naive = testing::RelativeError(testing::NaiveDecode(c, rows), ref);
  EXPECT_LE(err, 2.0 * naive + 1e-5) << what << " naive " << naive;
}

kernels::AttentionInput CpuStep(const DecodeCase& c, int64_t len) {
  kernels::AttentionInput in;
  in.q = {c.q_f.data(), c.hq(), 1, c.dim, c.dim, c.dim};
  in.k = KeysView(c, 0, len);
  in.v = {&c.v_f[c.kv_index(0, 0, 0, 0)], c.hkv, len, c.dim, c.capacity * c.dim, c.dim};
  in.q_offset = len - 1;
  return in;
}

TEST(StreamingSelectRows, SinkAndWindow_MatchDecodeAttention) {
  const int32_t L = 10007;
  for (auto [sink, window] :
       {std::pair<int64_t, int64_t>{4, 1024}, {0, 17}, {64, 0}, {5000, 6000}}) {
    const DecodeCase c = MakeCase(1, 2, 7, 128, {L, L}, 500 + static_cast<uint32_t>(window), 2.0f);
    DeviceCase d;
    ASSERT_NO_FATAL_FAILURE(Upload(c, &d));
    DeviceArray<int32_t> offsets(c.hkv + 1), rows(c.hkv * (sink + window) + 1);
    ASSERT_TRUE(StreamingSelectRows(d.p, sink, window, {offsets.get(), rows.get()}).ok());
    kernels::StreamingParams sp;
    sp.sink = sink;
    sp.window = window;
    absl::StatusOr<kernels::AttentionResult> cpu = kernels::testing::DecodeAttentionTyped(
        "streaming", sp, CpuStep(c, L), kernels::TensorView{});
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    const RowSelection sel{{c.hkv}, offsets.get(), rows.get()};
    ExpectGatheredMatchesCpu(
        c, &d, sel, sink + window, *cpu,
        "streaming sink " + std::to_string(sink) + " window " + std::to_string(window));
  }
}

TEST(OracleTopKSelectRows, PerQueryHead_EqualCpuSelectionAndOutput) {
  for (int group : {1, 4, 7, 8}) {
    const int32_t L = 20011;
    const DecodeCase c = MakeCase(1, 2, group, 128, {L, L}, 600 + group, 2.0f);
    DeviceCase d;
    ASSERT_NO_FATAL_FAILURE(Upload(c, &d));
    for (int64_t top_k : {1, 100, 2001, 30000}) {
      const int64_t lists = c.hq();
      DeviceArray<int32_t> offsets(lists + 1), rows(lists * std::min<int64_t>(top_k, L));
      DeviceArray<char> ws(OracleTopKWorkspaceBytes(d.p));
      AttentionParams p = d.p;
      p.workspace = ws.get();
      p.workspace_bytes = OracleTopKWorkspaceBytes(p);
      ASSERT_TRUE(OracleTopKSelectRows(p, top_k, {offsets.get(), rows.get()}).ok());
      std::vector<int32_t> off, got;
      ASSERT_EQ(offsets.Download(&off), cudaSuccess);
      ASSERT_EQ(rows.Download(&got), cudaSuccess);
      const ParamMap op = {{"top_k", std::min<int64_t>(top_k, L)}};
      absl::StatusOr<kernels::AttentionResult> cpu = kernels::testing::DecodeAttentionTyped(
          "oracle_topk", op, CpuStep(c, L), kernels::TensorView{});
      ASSERT_TRUE(cpu.ok()) << cpu.status();
      const std::string what =
          "oracle group " + std::to_string(group) + " top_k " + std::to_string(top_k);
      std::vector<kernels::KeyRange> ranges;
      for (int h = 0; h < c.hq(); ++h) {
        std::set<int64_t> only_gpu(got.begin() + off[h], got.begin() + off[h + 1]), only_cpu;
        cpu->selection->Row(h, 0, &ranges);
        for (const auto& r : ranges) {
          for (int64_t x = r.begin; x < r.end; ++x) {
            if (!only_gpu.erase(x)) only_cpu.insert(x);
          }
        }
        ASSERT_EQ(only_gpu.size(), only_cpu.size()) << what;
        auto dot = [&](int64_t r) {
          double s = 0;
          for (int dd = 0; dd < c.dim; ++dd) {
            s += static_cast<double>(c.q_f[c.q_index(0, h, dd)]) *
                 c.k_f[c.kv_index(0, h / group, r, dd)];
          }
          return s;
        };
        for (int64_t a : only_gpu) {
          for (int64_t e : only_cpu) {
            EXPECT_LE(std::abs(dot(a) - dot(e)), 1e-5 * std::max(std::abs(dot(a)), 1.0))
                << what << " head " << h << ": GPU row " << a << ", CPU row " << e;
          }
        }
      }
      const RowSelection sel{{c.hq()}, offsets.get(), rows.get()};
      ExpectGatheredMatchesCpu(c, &d, sel, std::min<int64_t>(top_k, L), *cpu, what);
    }
  }
}

// Small sizes over every selection kernel and the compaction, for compute-sanitizer runs.
TEST(EvictSmall, EveryPath_ForSanitizers) {
  for (bool adaptive : {false, true}) {
    const DecodeCase c = MakeCase(2, 2, 4, 128, {300, 300, 200, 200}, 95);
    const Observation o = MakeObservation(c, 20, 96, 2.0f);
    SnapKvArgs args;
    args.window = 16;
    args.token_capacity = 150;
    args.adaptive = adaptive;
    DeviceCase d;
    ASSERT_NO_FATAL_FAILURE(Upload(c, &d));
    DeviceArray<int32_t> offsets, rows;
    const GpuKept kept = RunSnapKv(c, o, args, &d, &offsets, &rows);
    ExpectSameKept(c, o, args, kept, adaptive ? "small ada_snapkv" : "small snapkv");
    DeviceArray<uint16_t> k2(c.k.size()), v2(c.v.size());
    DeviceArray<int32_t> len2(c.batch * c.hkv);
    KeptRows kr{c.hkv, offsets.get(), rows.get()};
    ASSERT_TRUE(CompactKv(d.p, kr, k2.get(), v2.get(), len2.get()).ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }
  const DecodeCase c = MakeCase(1, 2, 4, 128, {300, 300}, 97);
  DeviceCase d;
  ASSERT_NO_FATAL_FAILURE(Upload(c, &d));
  DeviceArray<int32_t> offsets(c.hq() + 1), rows(c.hq() * 40);
  ASSERT_TRUE(StreamingSelectRows(d.p, 4, 30, {offsets.get(), rows.get()}).ok());
  DeviceArray<char> ws(OracleTopKWorkspaceBytes(d.p));
  AttentionParams p = d.p;
  p.workspace = ws.get();
  p.workspace_bytes = OracleTopKWorkspaceBytes(p);
  ASSERT_TRUE(OracleTopKSelectRows(p, 40, {offsets.get(), rows.get()}).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
}  // namespace sf::cuda
