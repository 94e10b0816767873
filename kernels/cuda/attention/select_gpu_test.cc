// Each GPU selection against the CPU reference's PrefillSelect + DescribeSelection on the
// same bf16-rounded inputs (structured and Gaussian), compared as sets: identical, or
// differing only where the reference's own scores are a near-tie at the top-k boundary
// (every such entry is printed with its score).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/fidelity.h"
#include "kernels/cpu/methods/testing/typed_params.h"
#include "kernels/cpu/methods/xattention.h"
#include "kernels/cpu/selection_internal.h"
#include "kernels/cuda/attention/select.h"

namespace sf::cuda {
namespace {

#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

// Round-to-nearest-even float -> bf16 bits.
uint16_t ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
float FromBf16(uint16_t b) {
  const uint32_t u = uint32_t{b} << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct Case {
  int64_t lk = 0;
  int64_t lq = 0;  // queries of the call (the last lq positions)
  int hq = 0, hkv = 0, d = 0;
  bool structured = true;
  uint64_t seed = 1;
  std::string Name() const {
    char b[128];
    std::snprintf(b, sizeof(b), "L%lld q%lld Hq%d Hkv%d D%d %s", static_cast<long long>(lk),
                  static_cast<long long>(lq), hq, hkv, d, structured ? "structured" : "gaussian");
    return b;
  }
};

// Inputs on both sides: float tensors holding bf16-rounded values for the CPU, bf16 on
// the device in the engine's layout (q [n][Hq][D], K cache [Hkv][capacity][D]).
class Inputs {
 public:
  explicit Inputs(const Case& c) : c_(c) {
    kernels::Tensor q(c.hq, c.lk, c.d), k(c.hkv, c.lk, c.d);
    if (c.structured) {
      kernels::GeneratorOptions o;
      o.length = c.lk;
      o.heads = c.hq;
      o.kv_heads = c.hkv;
      o.head_dim = c.d;
      o.seed = c.seed;
      auto qkv = kernels::GenerateStructuredQkv(o);
      EXPECT_TRUE(qkv.ok()) << qkv.status();
      q = std::move(qkv->q);
      k = std::move(qkv->k);
    } else {
      std::mt19937_64 rng(c.seed);
      std::normal_distribution<float> n(0.f, 1.f);
      for (float& x : q.data) x = n(rng);
      for (float& x : k.data) x = n(rng);
    }
    for (float& x : q.data) x = FromBf16(ToBf16(x));
    for (float& x : k.data) x = FromBf16(ToBf16(x));
    q_ = std::move(q);
    k_ = std::move(k);
    v_ = kernels::Tensor(c.hkv, c.lk, c.d);
    for (size_t i = 0; i < v_.data.size(); ++i) v_.data[i] = 0.001f * static_cast<float>(i % 97);
    // Device copies; the cache holds 8 spare rows per head (stride != length).
    capacity_ = c.lk + 8;
    std::vector<uint16_t> qh(static_cast<size_t>(c.lq) * c.hq * c.d),
        kh(size_t{1} * c.hkv * capacity_ * c.d, 0);
    const int64_t off = c.lk - c.lq;
    for (int64_t i = 0; i < c.lq; ++i)
      for (int h = 0; h < c.hq; ++h)
        for (int x = 0; x < c.d; ++x) qh[(i * c.hq + h) * c.d + x] = ToBf16(q_.Row(h, off + i)[x]);
    for (int g = 0; g < c.hkv; ++g)
      for (int64_t r = 0; r < c.lk; ++r)
        for (int x = 0; x < c.d; ++x) kh[(g * capacity_ + r) * c.d + x] = ToBf16(k_.Row(g, r)[x]);
    EXPECT_EQ(cudaMalloc(&dq_, qh.size() * 2), cudaSuccess);
    EXPECT_EQ(cudaMalloc(&dk_, kh.size() * 2), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(dq_, qh.data(), qh.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(dk_, kh.data(), kh.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~Inputs() {
    cudaFree(dq_);
    cudaFree(dk_);
  }
  AttentionParams Attn() const {
    AttentionParams a;
    a.q = dq_;
    a.q_row_stride = int64_t{c_.hq} * c_.d;
    a.q_head_stride = c_.d;
    a.k = dk_;
    a.v = dk_;
    a.kv_head_stride = capacity_ * c_.d;
    a.kv_row_stride = c_.d;
    a.max_kv_length = c_.lk;
    a.num_queries = c_.lq;
    a.num_q_heads = c_.hq;
    a.num_kv_heads = c_.hkv;
    a.head_dim = c_.d;
    a.softmax_scale = 1.f / std::sqrt(static_cast<float>(c_.d));
    return a;
  }
  kernels::AttentionInput Cpu() const {
    kernels::AttentionInput in;
    in.q = q_.View().Rows(c_.lk - c_.lq, c_.lq);
    in.k = k_.View();
    in.v = v_.View();
    in.q_offset = c_.lk - c_.lq;
    return in;
  }

 private:
  Case c_;
  kernels::Tensor q_, k_, v_;
  int64_t capacity_ = 0;
  void* dq_ = nullptr;
  void* dk_ = nullptr;
};

// Device buffers sized as the method asks, poisoned so unwritten entries show.
struct DeviceBuffers {
  SelectionBuffers b;
  std::vector<void*> owned;
  void* Alloc(int64_t bytes) {
    void* p = nullptr;
    if (bytes <= 0) return nullptr;
    EXPECT_EQ(cudaMalloc(&p, bytes), cudaSuccess);
    EXPECT_EQ(cudaMemset(p, 0xA5, bytes), cudaSuccess);
    owned.push_back(p);
    return p;
  }
  explicit DeviceBuffers(const SelectionSizes& z) {
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
  ~DeviceBuffers() {
    for (void* p : owned) cudaFree(p);
  }
};

std::vector<int32_t> Download(const int32_t* p, int64_t n) {
  std::vector<int32_t> h(std::max<int64_t>(n, 0));
  if (n > 0) {
    EXPECT_EQ(cudaMemcpy(h.data(), p, 4 * n, cudaMemcpyDeviceToHost), cudaSuccess);
  }
  return h;
}

// CSR lists on the host, checked: offsets monotone from 0, entries sorted, unique, < limit.
std::vector<std::vector<int64_t>> Lists(const int32_t* offsets, const int32_t* items, int64_t lists,
                                        int64_t limit) {
  const std::vector<int32_t> off = Download(offsets, lists + 1);
  EXPECT_EQ(off[0], 0);
  std::vector<std::vector<int64_t>> out(lists);
  for (int64_t i = 0; i < lists; ++i) {
    EXPECT_LE(off[i], off[i + 1]) << "list " << i;
    if (off[i] > off[i + 1]) return out;
  }
  const std::vector<int32_t> all = Download(items, off[lists]);
  for (int64_t i = 0; i < lists; ++i) {
    for (int32_t x = off[i]; x < off[i + 1]; ++x) {
      const int64_t v = all[x];
      EXPECT_TRUE(v >= 0 && v < limit) << "list " << i << " entry " << v;
      if (!out[i].empty()) {
        EXPECT_LT(out[i].back(), v) << "list " << i << " not sorted/unique";
      }
      out[i].push_back(v);
    }
  }
  return out;
}

// Sets `got` and `want` (of one list) may differ only at entries whose reference score is
// within `tol` (relative to the boundary score) of the boundary: the smallest score among
// the reference's non-forced choices. Returns the number of differing entries.
int CompareNearTie(const std::string& what, const std::vector<int64_t>& got,
                   const std::vector<int64_t>& want, const std::vector<double>& score,
                   const std::function<bool(int64_t)>& forced, double tol) {
  std::vector<int64_t> only_got, only_want;
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(),
                      std::back_inserter(only_got));
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(),
                      std::back_inserter(only_want));
  if (only_got.empty() && only_want.empty()) return 0;
  double boundary = INFINITY;
  for (int64_t x : want)
    if (!forced(x)) boundary = std::min(boundary, score[x]);
  double scale = 0;
  for (double s : score) scale = std::max(scale, std::fabs(s));
  for (int64_t x : only_got) {
    EXPECT_FALSE(forced(x)) << what;
    const double gap = std::fabs(score[x] - boundary);
    std::printf("  near-tie %s: GPU-only entry %lld score %.9g boundary %.9g (gap %.2e)\n",
                what.c_str(), static_cast<long long>(x), score[x], boundary, gap);
    EXPECT_LE(gap, tol * std::max(std::fabs(boundary), 1e-3 * scale)) << what << " entry " << x;
  }
  for (int64_t x : only_want) {
    EXPECT_FALSE(forced(x)) << what << ": forced entry " << x << " missing on the GPU";
    const double gap = std::fabs(score[x] - boundary);
    std::printf("  near-tie %s: CPU-only entry %lld score %.9g boundary %.9g (gap %.2e)\n",
                what.c_str(), static_cast<long long>(x), score[x], boundary, gap);
    EXPECT_LE(gap, tol * std::max(std::fabs(boundary), 1e-3 * scale)) << what << " entry " << x;
  }
  return static_cast<int>(only_got.size() + only_want.size());
}

// The keys a LineSelection gives query row i (position pos) of one head, as ranges, for
// comparison with the reference's Row().
std::vector<kernels::KeyRange> LineRow(const std::vector<int64_t>& cols,
                                       const std::vector<int64_t>& diags, int64_t pos) {
  std::set<int64_t> keys;
  for (int64_t c : cols)
    if (c <= pos) keys.insert(c);
  for (int64_t d : diags)
    if (d <= pos) keys.insert(pos - d);
  std::vector<kernels::KeyRange> r;
  for (int64_t k : keys) {
    if (!r.empty() && r.back().end == k) {
      r.back().end = k + 1;
    } else {
      r.push_back({k, k + 1});
    }
  }
  return r;
}

void CheckRowsAgree(const kernels::Selection& cpu, const std::vector<std::vector<int64_t>>& cols,
                    const std::vector<std::vector<int64_t>>& diags, const Case& c) {
  std::vector<kernels::KeyRange> want;
  for (int h = 0; h < c.hq; ++h) {
    for (int64_t i : {int64_t{0}, c.lq / 2, c.lq - 1}) {
      cpu.Row(h, i, &want);
      const auto got = LineRow(cols[h], diags[h], c.lk - c.lq + i);
      ASSERT_EQ(got.size(), want.size()) << "head " << h << " row " << i;
      for (size_t x = 0; x < got.size(); ++x) {
        EXPECT_EQ(got[x].begin, want[x].begin);
        EXPECT_EQ(got[x].end, want[x].end);
      }
    }
  }
}

constexpr double kTieTolerance = 2e-4;

void RunVerticalSlash(const Case& c, const kernels::VerticalSlashParams& p) {
  SCOPED_TRACE(c.Name());
  Inputs in(c);
  const AttentionParams attn = in.Attn();
  auto z = VerticalSlashSelectSizes(attn, p);
  ASSERT_TRUE(z.ok()) << z.status();
  DeviceBuffers buf(*z);
  auto sel = SelectVerticalSlash(attn, p, buf.b);
  ASSERT_TRUE(sel.ok()) << sel.status();
  CUDA_OK(cudaDeviceSynchronize());
  const auto cols = Lists(sel->column_offsets, sel->columns, c.hq, c.lk);
  const auto diags = Lists(sel->diagonal_offsets, sel->diagonals, c.hq, c.lk);

  const kernels::AttentionInput cpu_in = in.Cpu();
  auto ref = kernels::testing::PrefillSelectTyped("vertical_slash", p, cpu_in);
  ASSERT_TRUE(ref.ok()) << ref.status();
  const kernels::SelectionStructure want = kernels::DescribeSelection(*ref->selection);
  const kernels::internal::LineMass mass =
      kernels::internal::ComputeLineMass(cpu_in, std::min(p.last_q, c.lq));
  int differ = 0;
  for (int h = 0; h < c.hq; ++h) {
    EXPECT_EQ(cols[h].size(), want.columns[h].size()) << "head " << h;
    EXPECT_EQ(diags[h].size(), want.offsets[h].size()) << "head " << h;
    differ += CompareNearTie(
        "columns of head " + std::to_string(h), cols[h], want.columns[h], mass.columns[h],
        [&](int64_t x) { return x < p.sink; }, kTieTolerance);
    differ += CompareNearTie(
        "diagonals of head " + std::to_string(h), diags[h], want.offsets[h], mass.diagonals[h],
        [&](int64_t x) { return x < p.local; }, kTieTolerance);
  }
  if (differ == 0) CheckRowsAgree(*ref->selection, cols, diags, c);
  std::printf("vertical_slash %s: %d entries differ (near-ties)\n", c.Name().c_str(), differ);
  auto flops = EstimationFlops(attn, p);
  ASSERT_TRUE(flops.ok());
  EXPECT_DOUBLE_EQ(*flops, ref->estimation_flops);
}

kernels::VerticalSlashParams VsParams(int64_t lk, int64_t last_q, int64_t local, int64_t budget) {
  kernels::VerticalSlashParams p;
  p.last_q = last_q;
  p.sink = 4;
  p.local = local;
  p.verticals = std::max<int64_t>(budget, 4);
  p.slashes = std::max<int64_t>(budget, local);
  (void)lk;
  return p;
}

TEST(VerticalSlashGpu, MatchesReferenceStructured) {
  RunVerticalSlash({113, 113, 4, 4, 64, true, 1}, VsParams(113, 64, 16, 20));
  RunVerticalSlash({1023, 1023, 8, 2, 128, true, 2}, VsParams(1023, 256, 64, 100));
  RunVerticalSlash({4097, 4097, 7, 1, 64, true, 3}, VsParams(4097, 256, 64, 400));
  RunVerticalSlash({1023, 1023, 8, 1, 128, true, 4}, VsParams(1023, 100, 64, 97));
}

TEST(VerticalSlashGpu, MatchesReferenceGaussianAndOffsets) {
  RunVerticalSlash({1023, 1023, 4, 4, 128, false, 5}, VsParams(1023, 256, 64, 100));
  RunVerticalSlash({2000, 700, 8, 2, 64, false, 6}, VsParams(2000, 256, 64, 150));
  RunVerticalSlash({300, 300, 4, 1, 256, true, 7}, VsParams(300, 64, 16, 40));
}

TEST(VerticalSlashGpu, BadParametersNameTheParameter) {
  Inputs in({113, 113, 4, 4, 64, false, 1});
  kernels::VerticalSlashParams p = VsParams(113, 64, 16, 20);
  p.verticals = 200;
  auto z = VerticalSlashSelectSizes(in.Attn(), p);
  ASSERT_FALSE(z.ok());
  EXPECT_NE(z.status().message().find("verticals"), std::string::npos) << z.status();
  p = VsParams(113, 64, 16, 20);
  auto ok = VerticalSlashSelectSizes(in.Attn(), p);
  ASSERT_TRUE(ok.ok());
  SelectionBuffers none;
  auto sel = SelectVerticalSlash(in.Attn(), p, none);
  ASSERT_FALSE(sel.ok());
  EXPECT_NE(sel.status().message().find("workspace"), std::string::npos) << sel.status();
}

// Counts from the cumulative mass that differ between GPU and reference are allowed only
// where the sorted running sum crosses gamma within float rounding: at the first index
// where the two counts disagree the running sum must be gamma up to 1e-5.
int CheckCoverCount(const std::string& what, const std::vector<double>& mean_scores, double gamma,
                    int64_t gpu_count, int64_t cpu_count) {
  std::vector<double> sorted = mean_scores;
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  const int64_t at = std::min(gpu_count, cpu_count) - 1;
  double cum = 0;
  for (int64_t i = 0; i <= at && i < static_cast<int64_t>(sorted.size()); ++i) cum += sorted[i];
  std::printf("  near-tie %s: count GPU %lld CPU %lld, running sum there %.9g, gamma %g\n",
              what.c_str(), static_cast<long long>(gpu_count), static_cast<long long>(cpu_count),
              cum, gamma);
  EXPECT_LE(std::llabs(gpu_count - cpu_count), 2) << what;
  EXPECT_LE(std::fabs(cum - gamma), 1e-5) << what;
  return static_cast<int>(std::llabs(gpu_count - cpu_count));
}

void RunFlexPrefillStudy(const Case& c, const kernels::FlexPrefillParams& p) {
  SCOPED_TRACE(c.Name());
  Inputs in(c);
  const AttentionParams attn = in.Attn();
  auto z = FlexPrefillSelectSizes(attn, p);
  ASSERT_TRUE(z.ok()) << z.status();
  DeviceBuffers buf(*z);
  auto sel = SelectFlexPrefillLines(attn, p, buf.b);
  ASSERT_TRUE(sel.ok()) << sel.status();
  CUDA_OK(cudaDeviceSynchronize());
  const auto cols = Lists(sel->column_offsets, sel->columns, c.hq, c.lk);
  const auto diags = Lists(sel->diagonal_offsets, sel->diagonals, c.hq, c.lk);
  const kernels::AttentionInput cpu_in = in.Cpu();
  auto ref = kernels::testing::PrefillSelectTyped("flexprefill", p, cpu_in);
  ASSERT_TRUE(ref.ok()) << ref.status();
  const kernels::SelectionStructure want = kernels::DescribeSelection(*ref->selection);
  const int64_t est_q = std::min(p.last_q, c.lq);
  const kernels::internal::LineMass mass = kernels::internal::ComputeLineMass(cpu_in, est_q);
  int differ = 0;
  for (int h = 0; h < c.hq; ++h) {
    for (int kind = 0; kind < 2; ++kind) {
      const std::string what =
          (kind ? "diagonals of head " : "columns of head ") + std::to_string(h);
      const auto& got = kind ? diags[h] : cols[h];
      const auto& w = kind ? want.offsets[h] : want.columns[h];
      std::vector<double> mean = kind ? mass.diagonals[h] : mass.columns[h];
      for (double& x : mean) x /= static_cast<double>(est_q);
      const int64_t forced = std::min<int64_t>(kind ? 64 : 4, c.lk);
      std::vector<char> is_forced(c.lk, 0);
      for (int64_t x = 0; x < forced; ++x) is_forced[x] = 1;
      std::vector<int64_t> at_gpu_count = w;
      if (got.size() != w.size()) {
        differ += CheckCoverCount(what, mean, p.gamma, static_cast<int64_t>(got.size()),
                                  static_cast<int64_t>(w.size()));
        at_gpu_count = kernels::internal::TopKIndices(mean, is_forced, got.size());
      }
      differ += CompareNearTie(
          what, got, at_gpu_count, mean, [&](int64_t x) { return x < forced; }, kTieTolerance);
    }
  }
  std::printf("flexprefill(study) %s: %d entries differ (near-ties)\n", c.Name().c_str(), differ);
  auto flops = EstimationFlops(attn, p);
  ASSERT_TRUE(flops.ok());
  EXPECT_DOUBLE_EQ(*flops, ref->estimation_flops);
}

kernels::FlexPrefillParams FlexParams(double gamma, int64_t min_budget, int64_t last_q) {
  kernels::FlexPrefillParams p;
  p.gamma = gamma;
  p.min_budget = min_budget;
  p.last_q = last_q;
  return p;
}

TEST(FlexPrefillGpu, StudyVariantMatchesReference) {
  RunFlexPrefillStudy({113, 113, 4, 4, 64, true, 1}, FlexParams(0.65, 16, 64));
  RunFlexPrefillStudy({1023, 1023, 8, 2, 128, true, 2}, FlexParams(0.65, 64, 256));
  RunFlexPrefillStudy({4097, 4097, 7, 1, 64, true, 3}, FlexParams(0.9, 128, 512));
  RunFlexPrefillStudy({1023, 1023, 8, 1, 128, false, 4}, FlexParams(0.5, 32, 128));
  RunFlexPrefillStudy({1023, 1023, 4, 4, 64, false, 5}, FlexParams(1.0, 64, 128));
  RunFlexPrefillStudy({4097, 4097, 8, 2, 128, true, 6}, FlexParams(0.65, 512, 512));
}

// Mean of rows [b, e) of head h, in double.
std::vector<double> MeanRows(const kernels::TensorView& t, int64_t h, int64_t b, int64_t e) {
  std::vector<double> m(t.dim, 0.0);
  for (int64_t i = b; i < e; ++i)
    for (int64_t x = 0; x < t.dim; ++x) m[x] += t.Row(h, i)[x];
  for (double& x : m) x /= static_cast<double>(e - b);
  return m;
}

// softmax(pooled q . pooled key block * scale) over key blocks [0, n), in double.
std::vector<double> PooledSoftmax(const kernels::AttentionInput& in, const std::vector<double>& pq,
                                  int64_t kvh, int64_t block, int64_t n) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(in.q.dim));
  std::vector<double> p(n);
  double m = -INFINITY;
  for (int64_t kb = 0; kb < n; ++kb) {
    const auto pk = MeanRows(in.k, kvh, kb * block, std::min(in.k.len, (kb + 1) * block));
    double dot = 0;
    for (size_t x = 0; x < pq.size(); ++x) dot += pq[x] * pk[x];
    p[kb] = dot * scale;
    m = std::max(m, p[kb]);
  }
  double z = 0;
  for (double& x : p) z += (x = std::exp(x - m));
  for (double& x : p) x /= z;
  return p;
}

void RunFlexPrefillOriginal(const Case& c, const kernels::FlexPrefillParams& p) {
  SCOPED_TRACE(c.Name());
  Inputs in(c);
  const AttentionParams attn = in.Attn();
  auto z = FlexPrefillSelectSizes(attn, p);
  ASSERT_TRUE(z.ok()) << z.status();
  DeviceBuffers buf(*z);
  auto sel = SelectFlexPrefillMixed(attn, p, buf.b);
  ASSERT_TRUE(sel.ok()) << sel.status();
  CUDA_OK(cudaDeviceSynchronize());
  const std::vector<int32_t> kinds = Download(sel->head_kinds, c.hq);
  const auto cols = Lists(sel->lines.column_offsets, sel->lines.columns, c.hq, c.lk);
  const auto diags = Lists(sel->lines.diagonal_offsets, sel->lines.diagonals, c.hq, c.lk);
  const int64_t nb = (c.lk + p.block - 1) / p.block;
  const int64_t nqb = sel->blocks.num_query_blocks;
  const auto blocks = Lists(sel->blocks.offsets, sel->blocks.key_blocks, c.hq * nqb, nb);
  const kernels::AttentionInput cpu_in = in.Cpu();
  auto ref = kernels::testing::PrefillSelectTyped("flexprefill", p, cpu_in);
  ASSERT_TRUE(ref.ok()) << ref.status();
  const kernels::SelectionStructure want = kernels::DescribeSelection(*ref->selection);
  const int64_t est_q = std::min(p.block, c.lq);
  const kernels::internal::LineMass mass = kernels::internal::ComputeLineMass(cpu_in, est_q);
  const int64_t first_qb = (c.lk - c.lq) / p.block;
  int differ = 0, aware = 0;
  for (int h = 0; h < c.hq; ++h) {
    const bool cpu_blocks = !want.blocks[h].empty();
    const bool gpu_blocks = kinds[h] == static_cast<int32_t>(HeadSelectionKind::kBlocks);
    aware += gpu_blocks;
    // The reference's Jensen-Shannon distance, for the record and for near-ties at tau.
    std::vector<double> truth(nb, 0.0);
    for (int64_t j = 0; j < c.lk; ++j) truth[j / p.block] += mass.columns[h][j];
    double tz = 0;
    for (double x : truth) tz += x;
    for (double& x : truth) x /= tz;
    const auto est = PooledSoftmax(cpu_in, MeanRows(cpu_in.q, h, c.lq - est_q, c.lq),
                                   h / (c.hq / c.hkv), p.block, nb);
    double js = 0;
    for (int64_t x = 0; x < nb; ++x) {
      const double m = 0.5 * (truth[x] + est[x]);
      if (truth[x] > 0) js += 0.5 * truth[x] * std::log(truth[x] / m);
      if (est[x] > 0) js += 0.5 * est[x] * std::log(est[x] / m);
    }
    js = std::sqrt(std::max(js, 0.0));
    if (cpu_blocks != gpu_blocks) {
      std::printf("  near-tie head %d: kind GPU %d CPU %d, JS distance %.9g tau %g\n", h, kinds[h],
                  cpu_blocks ? 1 : 0, js, p.tau);
      EXPECT_LE(std::fabs(js - p.tau), 1e-4) << "head " << h;
      ++differ;
      continue;
    }
    if (gpu_blocks) {
      EXPECT_TRUE(cols[h].empty() && diags[h].empty()) << "head " << h;
      for (int64_t b = 0; b < nqb; ++b) {
        const int64_t qb = first_qb + b;
        const int64_t rb = qb * p.block - (c.lk - c.lq);
        const auto prob =
            PooledSoftmax(cpu_in, MeanRows(cpu_in.q, h, rb, std::min(rb + p.block, c.lq)),
                          h / (c.hq / c.hkv), p.block, qb + 1);
        const auto& got = blocks[h * nqb + b];
        const auto& w = want.blocks[h][qb];
        std::vector<int64_t> at_gpu_count = w;
        const std::string what = "head " + std::to_string(h) + " query block " + std::to_string(qb);
        if (got.size() != w.size()) {
          differ += CheckCoverCount(what, prob, p.gamma, got.size(), w.size());
          std::vector<char> forced(qb + 1, 0);
          forced[0] = forced[qb] = 1;
          at_gpu_count = kernels::internal::TopKIndices(prob, forced, got.size());
        }
        differ += CompareNearTie(
            what, got, at_gpu_count, prob, [&](int64_t x) { return x == 0 || x == qb; }, 1e-3);
      }
      continue;
    }
    for (int64_t b = 0; b < nqb; ++b) EXPECT_TRUE(blocks[h * nqb + b].empty()) << "head " << h;
    for (int kind = 0; kind < 2; ++kind) {
      const std::string what =
          (kind ? "diagonals of head " : "columns of head ") + std::to_string(h);
      const auto& got = kind ? diags[h] : cols[h];
      const auto& w = kind ? want.offsets[h] : want.columns[h];
      std::vector<double> mean = kind ? mass.diagonals[h] : mass.columns[h];
      for (double& x : mean) x /= static_cast<double>(est_q);
      const int64_t forced = std::min<int64_t>(kind ? 64 : 4, c.lk);
      std::vector<char> is_forced(c.lk, 0);
      for (int64_t x = 0; x < forced; ++x) is_forced[x] = 1;
      std::vector<int64_t> at_gpu_count = w;
      if (got.size() != w.size()) {
        differ += CheckCoverCount(what, mean, p.gamma, got.size(), w.size());
        at_gpu_count = kernels::internal::TopKIndices(mean, is_forced, got.size());
      }
      differ += CompareNearTie(
          what, got, at_gpu_count, mean, [&](int64_t x) { return x < forced; }, kTieTolerance);
    }
  }
  std::printf("flexprefill(original) %s tau %g: %d query-aware heads, %d entries differ\n",
              c.Name().c_str(), p.tau, aware, differ);
  auto flops = EstimationFlops(attn, p, aware);
  ASSERT_TRUE(flops.ok());
  EXPECT_DOUBLE_EQ(*flops, ref->estimation_flops);
}

kernels::FlexPrefillParams OriginalParams(double gamma, double tau, int64_t block,
                                          int64_t min_budget) {
  kernels::FlexPrefillParams p;
  p.original = true;
  p.gamma = gamma;
  p.tau = tau;
  p.block = block;
  p.min_budget = min_budget;
  return p;
}

TEST(FlexPrefillGpu, OriginalVariantMatchesReference) {
  RunFlexPrefillOriginal({1023, 1023, 8, 2, 128, true, 1}, OriginalParams(0.9, 0.1, 64, 128));
  RunFlexPrefillOriginal({1023, 1023, 8, 2, 128, true, 1}, OriginalParams(0.9, 0.6, 64, 128));
  RunFlexPrefillOriginal({4097, 4097, 7, 1, 64, true, 2}, OriginalParams(0.65, 10.0, 128, 256));
  RunFlexPrefillOriginal({113, 113, 4, 4, 64, false, 3}, OriginalParams(0.9, 10.0, 16, 16));
  RunFlexPrefillOriginal({2048, 1024, 8, 1, 128, true, 4}, OriginalParams(0.65, 0.3, 128, 512));
  RunFlexPrefillOriginal({1000, 1000, 4, 2, 256, false, 5}, OriginalParams(0.9, 0.0, 64, 64));
}

void RunStreaming(const Case& c, int64_t sink, int64_t window) {
  SCOPED_TRACE(c.Name());
  Inputs in(c);
  kernels::StreamingParams p;
  p.sink = sink;
  p.window = window;
  auto z = StreamingSelectSizes(in.Attn(), p);
  ASSERT_TRUE(z.ok()) << z.status();
  DeviceBuffers buf(*z);
  auto sel = SelectStreaming(in.Attn(), p, buf.b);
  ASSERT_TRUE(sel.ok()) << sel.status();
  CUDA_OK(cudaDeviceSynchronize());
  const auto cols = Lists(sel->column_offsets, sel->columns, c.hq, c.lk);
  const auto diags = Lists(sel->diagonal_offsets, sel->diagonals, c.hq, c.lk);
  auto ref = kernels::testing::PrefillSelectTyped("streaming", p, in.Cpu());
  ASSERT_TRUE(ref.ok()) << ref.status();
  for (int h = 0; h < c.hq; ++h) {
    ASSERT_EQ(static_cast<int64_t>(cols[h].size()), sink);
    ASSERT_EQ(static_cast<int64_t>(diags[h].size()), window);
  }
  CheckRowsAgree(*ref->selection, cols, diags, c);
}

TEST(StreamingGpu, MatchesReferenceRows) {
  RunStreaming({113, 113, 4, 4, 64, false, 1}, 4, 16);
  RunStreaming({1023, 600, 7, 1, 128, false, 2}, 4, 100);
}

// block_sparse scores as the reference computes them (double means and dots).
std::vector<std::vector<std::vector<double>>> BlockSparseScores(const kernels::AttentionInput& in,
                                                                int64_t block) {
  const int64_t nb = (in.k.len + block - 1) / block, d = in.q.dim;
  const int64_t first_qb = in.q_offset / block, last_qb = (in.q_offset + in.q.len - 1) / block;
  auto mean = [&](const kernels::TensorView& t, int64_t h, int64_t b, int64_t e) {
    std::vector<double> m(d, 0.0);
    for (int64_t i = b; i < e; ++i)
      for (int64_t x = 0; x < d; ++x) m[x] += t.Row(h, i)[x];
    for (double& x : m) x /= static_cast<double>(e - b);
    return m;
  };
  std::vector<std::vector<std::vector<double>>> pk(in.k.heads);
  for (int64_t g = 0; g < in.k.heads; ++g)
    for (int64_t b = 0; b < nb; ++b)
      pk[g].push_back(mean(in.k, g, b * block, std::min(in.k.len, (b + 1) * block)));
  std::vector<std::vector<std::vector<double>>> s(in.q.heads);
  for (int64_t h = 0; h < in.q.heads; ++h) {
    s[h].resize(last_qb + 1);
    for (int64_t qb = first_qb; qb <= last_qb; ++qb) {
      const int64_t rb = std::max<int64_t>(qb * block - in.q_offset, 0);
      const int64_t re = std::min<int64_t>((qb + 1) * block - in.q_offset, in.q.len);
      const auto pq = mean(in.q, h, rb, re);
      for (int64_t kb = 0; kb <= qb; ++kb) {
        double dot = 0;
        for (int64_t x = 0; x < d; ++x) dot += pq[x] * pk[h / in.group()][kb][x];
        s[h][qb].push_back(dot);
      }
    }
  }
  return s;
}

void RunBlockSparse(const Case& c, int64_t block, int64_t budget) {
  SCOPED_TRACE(c.Name());
  Inputs in(c);
  kernels::BlockSparseParams p;
  p.block = block;
  p.block_budget = budget;
  const AttentionParams attn = in.Attn();
  auto z = BlockSparseSelectSizes(attn, p);
  ASSERT_TRUE(z.ok()) << z.status();
  DeviceBuffers buf(*z);
  auto sel = SelectBlockSparse(attn, p, buf.b);
  ASSERT_TRUE(sel.ok()) << sel.status();
  CUDA_OK(cudaDeviceSynchronize());
  const int64_t nb = (c.lk + block - 1) / block;
  const auto lists =
      Lists(sel->offsets, sel->key_blocks, int64_t{c.hq} * sel->num_query_blocks, nb);
  const kernels::AttentionInput cpu_in = in.Cpu();
  auto ref = kernels::testing::PrefillSelectTyped("block_sparse", p, cpu_in);
  ASSERT_TRUE(ref.ok()) << ref.status();
  const kernels::SelectionStructure want = kernels::DescribeSelection(*ref->selection);
  const auto scores = BlockSparseScores(cpu_in, block);
  const int64_t first_qb = (c.lk - c.lq) / block;
  int differ = 0;
  for (int h = 0; h < c.hq; ++h) {
    for (int64_t b = 0; b < sel->num_query_blocks; ++b) {
      const int64_t qb = first_qb + b;
      const auto& got = lists[h * sel->num_query_blocks + b];
      const auto& w = want.blocks[h][qb];
      EXPECT_EQ(got.size(), w.size()) << "head " << h << " query block " << qb;
      differ += CompareNearTie(
          "head " + std::to_string(h) + " query block " + std::to_string(qb), got, w, scores[h][qb],
          [&](int64_t x) { return x == 0 || x == qb || x == qb - 1; }, kTieTolerance);
    }
  }
  std::printf("block_sparse %s block %lld budget %lld: %d entries differ (near-ties)\n",
              c.Name().c_str(), static_cast<long long>(block), static_cast<long long>(budget),
              differ);
  auto flops = EstimationFlops(attn, p);
  ASSERT_TRUE(flops.ok());
  EXPECT_DOUBLE_EQ(*flops, ref->estimation_flops);
}

TEST(BlockSparseGpu, MatchesReference) {
  RunBlockSparse({113, 113, 4, 4, 64, true, 1}, 16, 3);
  RunBlockSparse({1023, 1023, 8, 2, 128, true, 2}, 16, 10);
  RunBlockSparse({4097, 4097, 7, 1, 64, false, 3}, 64, 8);
  RunBlockSparse({1023, 1023, 8, 1, 128, false, 4}, 32, 5);
  RunBlockSparse({2048, 1024, 4, 4, 256, true, 5}, 64, 4);
  RunBlockSparse({4097, 4097, 8, 2, 128, true, 6}, 16, 40);
}

TEST(BlockSparseGpu, UnalignedOffsetIsInvalidArgument) {
  Inputs in({1000, 500, 4, 4, 64, false, 1});
  kernels::BlockSparseParams p;
  p.block = 64;
  p.block_budget = 4;
  auto z = BlockSparseSelectSizes(in.Attn(), p);
  ASSERT_FALSE(z.ok());
  EXPECT_NE(z.status().message().find("block"), std::string::npos) << z.status();
}

// xattention's count comes from a running mass against threshold x total: where GPU and
// reference counts differ, the reference's running mass (forced blocks first, then by
// mass) must reach the target within 1e-5 (relative) at the first count where they differ.
int CheckThresholdCount(const std::string& what, const std::vector<double>& mass, int64_t qb,
                        double threshold, int64_t gpu_count, int64_t cpu_count) {
  double total = 0;
  for (double m : mass) total += m;
  std::vector<double> others;
  for (int64_t kb = 1; kb < qb; ++kb) others.push_back(mass[kb]);
  std::sort(others.begin(), others.end(), std::greater<double>());
  const int64_t forced = qb >= 1 ? 2 : 1;
  double cum = mass[0] + (qb >= 1 ? mass[qb] : 0.0);
  const int64_t at = std::min(gpu_count, cpu_count) - forced;
  for (int64_t i = 0; i < at && i < static_cast<int64_t>(others.size()); ++i) cum += others[i];
  std::printf("  near-tie %s: count GPU %lld CPU %lld, running mass %.9g vs target %.9g\n",
              what.c_str(), static_cast<long long>(gpu_count), static_cast<long long>(cpu_count),
              cum, threshold * total);
  EXPECT_LE(std::llabs(gpu_count - cpu_count), 2) << what;
  EXPECT_LE(std::fabs(cum - threshold * total), 1e-5 * total) << what;
  return static_cast<int>(std::llabs(gpu_count - cpu_count));
}

void RunXAttention(const Case& c, int64_t block, int64_t stride, double threshold) {
  SCOPED_TRACE(c.Name());
  Inputs in(c);
  kernels::XAttentionParams p;
  p.block = block;
  p.stride = stride;
  p.threshold = threshold;
  const AttentionParams attn = in.Attn();
  auto z = XAttentionSelectSizes(attn, p);
  ASSERT_TRUE(z.ok()) << z.status();
  DeviceBuffers buf(*z);
  auto sel = SelectXAttention(attn, p, buf.b);
  ASSERT_TRUE(sel.ok()) << sel.status();
  CUDA_OK(cudaDeviceSynchronize());
  const int64_t nb = (c.lk + block - 1) / block;
  const auto lists =
      Lists(sel->offsets, sel->key_blocks, int64_t{c.hq} * sel->num_query_blocks, nb);
  const kernels::AttentionInput cpu_in = in.Cpu();
  auto ref = kernels::testing::PrefillSelectTyped("xattention", p, cpu_in);
  ASSERT_TRUE(ref.ok()) << ref.status();
  const kernels::SelectionStructure want = kernels::DescribeSelection(*ref->selection);
  const kernels::internal::BlockMass bm =
      kernels::internal::ComputeXAttentionMass(cpu_in, block, stride);
  const int64_t first_qb = (c.lk - c.lq) / block;
  int differ = 0;
  for (int h = 0; h < c.hq; ++h) {
    for (int64_t b = 0; b < sel->num_query_blocks; ++b) {
      const int64_t qb = first_qb + b;
      const std::string what = "head " + std::to_string(h) + " query block " + std::to_string(qb);
      const auto& got = lists[h * sel->num_query_blocks + b];
      const auto& w = want.blocks[h][qb];
      const std::vector<double>& mass = bm.mass[h][qb];
      std::vector<int64_t> at_gpu_count = w;
      if (got.size() != w.size()) {
        differ += CheckThresholdCount(what, mass, qb, threshold, got.size(), w.size());
        std::vector<char> forced(qb + 1, 0);
        forced[0] = forced[qb] = 1;
        at_gpu_count = kernels::internal::TopKIndices(mass, forced, got.size());
      }
      differ += CompareNearTie(
          what, got, at_gpu_count, mass, [&](int64_t x) { return x == 0 || x == qb; }, 1e-3);
    }
  }
  std::printf("xattention %s block %lld stride %lld threshold %g: %d entries differ\n",
              c.Name().c_str(), static_cast<long long>(block), static_cast<long long>(stride),
              threshold, differ);
  auto flops = EstimationFlops(attn, p);
  ASSERT_TRUE(flops.ok());
  EXPECT_DOUBLE_EQ(*flops, ref->estimation_flops);
}

TEST(XAttentionGpu, MatchesReference) {
  RunXAttention({113, 113, 4, 4, 64, true, 1}, 16, 4, 0.9);
  RunXAttention({1023, 1023, 8, 2, 128, true, 2}, 64, 8, 0.9);
  RunXAttention({4097, 4097, 7, 1, 64, true, 3}, 128, 8, 0.9);
  RunXAttention({1023, 1023, 8, 1, 128, false, 4}, 32, 8, 0.8);
  RunXAttention({2048, 1024, 4, 4, 128, true, 5}, 128, 8, 0.95);
  RunXAttention({1000, 1000, 4, 2, 256, true, 6}, 64, 8, 0.9);
  RunXAttention({1023, 1023, 4, 1, 64, true, 7}, 128, 16, 0.9);
  RunXAttention({500, 500, 4, 2, 64, false, 8}, 64, 4, 1.0);
}

// Small shapes of every method, for compute-sanitizer (memcheck, racecheck) runs.
TEST(SmallGpu, EveryMethodSmall) {
  RunVerticalSlash({113, 113, 4, 1, 64, true, 11}, VsParams(113, 64, 16, 20));
  RunFlexPrefillStudy({113, 113, 4, 1, 64, true, 12}, FlexParams(0.65, 16, 64));
  RunBlockSparse({113, 113, 4, 1, 64, true, 13}, 16, 3);
  RunStreaming({113, 113, 4, 1, 64, false, 14}, 4, 16);
  RunXAttention({113, 113, 4, 1, 64, true, 15}, 16, 4, 0.9);
  RunFlexPrefillOriginal({113, 113, 4, 1, 64, true, 16}, OriginalParams(0.9, 10.0, 16, 16));
}

}  // namespace
}  // namespace sf::cuda
