// Quest on the GPU against the CPU definition (kernels::QuestPageIndex,
// DecodeAttention("quest")): page metadata equal bit for bit (from scratch and grown by
// appends), page selections equal as sets (up to float32 near-ties, checked against the
// CPU's float64 scores), and the sparse decode output within the naive same-precision
// tolerance of the float64 reference.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/methods/testing/typed_params.h"
#include "kernels/cuda/attention/decode_test_util.h"
#include "kernels/cuda/attention/quest.h"

namespace sf::cuda {
namespace {

using testing::DecodeCase;
using testing::DeviceArray;
using testing::FromBf16;
using testing::HeadRows;
using testing::MakeCase;

struct DeviceQuest {
  DeviceArray<uint16_t> q, k, v, out, mn, mx;
  DeviceArray<int32_t> lengths;
  AttentionParams p;
  QuestPages meta;
};

void Upload(const DecodeCase& c, int page, DeviceQuest* d) {
  d->q = DeviceArray<uint16_t>(c.q.size());
  d->k = DeviceArray<uint16_t>(c.k.size());
  d->v = DeviceArray<uint16_t>(c.v.size());
  d->out = DeviceArray<uint16_t>(c.q.size());
  d->lengths = DeviceArray<int32_t>(c.lengths.size());
  ASSERT_EQ(d->q.Upload(c.q), cudaSuccess);
  ASSERT_EQ(d->k.Upload(c.k), cudaSuccess);
  ASSERT_EQ(d->v.Upload(c.v), cudaSuccess);
  ASSERT_EQ(d->lengths.Upload(c.lengths), cudaSuccess);
  ASSERT_EQ(cudaMemset(d->out.get(), 0xff, c.q.size() * 2), cudaSuccess);
  AttentionParams& p = d->p;
  p.q = d->q.get();
  p.q_head_stride = c.dim;
  p.q_row_stride = p.q_batch_stride = static_cast<int64_t>(c.hq()) * c.dim;
  p.k = d->k.get();
  p.v = d->v.get();
  p.kv_row_stride = c.dim;
  p.kv_head_stride = c.capacity * c.dim;
  p.kv_batch_stride = c.hkv * c.capacity * c.dim;
  p.kv_lengths = d->lengths.get();
  p.max_kv_length = *std::max_element(c.lengths.begin(), c.lengths.end());
  p.num_queries = 1;
  p.num_q_heads = c.hq();
  p.num_kv_heads = c.hkv;
  p.head_dim = c.dim;
  p.softmax_scale = 1.0f / std::sqrt(static_cast<float>(c.dim));
  p.out = d->out.get();
  p.out_head_stride = c.dim;
  p.out_row_stride = p.out_batch_stride = static_cast<int64_t>(c.hq()) * c.dim;
  p.batch = c.batch;
  d->meta.page = page;
  d->meta.max_pages = (c.capacity + page - 1) / page;
  const int64_t bytes = QuestPagesBytes(c.batch, c.hkv, d->meta.max_pages, c.dim);
  d->mn = DeviceArray<uint16_t>(bytes / 2);
  d->mx = DeviceArray<uint16_t>(bytes / 2);
  ASSERT_EQ(cudaMemset(d->mn.get(), 0xff, bytes), cudaSuccess);
  ASSERT_EQ(cudaMemset(d->mx.get(), 0xff, bytes), cudaSuccess);
  d->meta.min = d->mn.get();
  d->meta.max = d->mx.get();
}

// Host min/max of every page below each head's length must equal the device's.
void ExpectMetadata(const DecodeCase& c, const DeviceQuest& d, const std::string& what) {
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<uint16_t> mn, mx;
  ASSERT_EQ(d.mn.Download(&mn), cudaSuccess);
  ASSERT_EQ(d.mx.Download(&mx), cudaSuccess);
  const int page = d.meta.page;
  int64_t mismatches = 0;
  for (int b = 0; b < c.batch; ++b) {
    for (int g = 0; g < c.hkv; ++g) {
      const int64_t len = c.lengths[b * c.hkv + g];
      for (int64_t pg = 0; pg * page < len; ++pg) {
        for (int dd = 0; dd < c.dim; ++dd) {
          float lo = INFINITY, hi = -INFINITY;
          for (int64_t r = pg * page; r < std::min<int64_t>(len, (pg + 1) * page); ++r) {
            lo = std::min(lo, c.k_f[c.kv_index(b, g, r, dd)]);
            hi = std::max(hi, c.k_f[c.kv_index(b, g, r, dd)]);
          }
          const int64_t at =
              ((static_cast<int64_t>(b) * c.hkv + g) * d.meta.max_pages + pg) * c.dim + dd;
          mismatches += FromBf16(mn[at]) != lo || FromBf16(mx[at]) != hi;
        }
      }
    }
  }
  EXPECT_EQ(mismatches, 0) << what;
}

struct GpuSelection {
  std::vector<int32_t> offsets, pages;
};
GpuSelection RunSelect(const DeviceQuest& d, const QuestSelectArgs& args);

TEST(QuestUpdatePages, FromScratchAndByAppends_EqualHostMinMax) {
  for (int page : {16, 7}) {
    DecodeCase c = MakeCase(2, 2, 4, 128, {100003, 57, 4097, 33}, 40 + page);
    DeviceQuest d;
    ASSERT_NO_FATAL_FAILURE(Upload(c, page, &d));
    ASSERT_TRUE(QuestUpdatePages(d.p, d.meta, d.p.max_kv_length).ok());
    ExpectMetadata(c, d, "from scratch, page " + std::to_string(page));
    // Grow: prefill of length - 20, then 20 single-row appends.
    DeviceQuest e;
    ASSERT_NO_FATAL_FAILURE(Upload(c, page, &e));
    std::vector<int32_t> lengths = c.lengths;
    for (int32_t& l : lengths) l -= 20;
    ASSERT_EQ(e.lengths.Upload(lengths), cudaSuccess);
    ASSERT_TRUE(QuestUpdatePages(e.p, e.meta, e.p.max_kv_length).ok());
    // Page 16 grows through QuestUpdatePages, page 7 through the selection's own update.
    for (int step = 0; step < 20; ++step) {
      for (int32_t& l : lengths) ++l;
      ASSERT_EQ(e.lengths.Upload(lengths), cudaSuccess);
      if (page == 16) {
        ASSERT_TRUE(QuestUpdatePages(e.p, e.meta, 1).ok());
      } else {
        RunSelect(e, QuestSelectArgs{3, true, /*update_last_page=*/true});
      }
    }
    ExpectMetadata(c, e, "by appends, page " + std::to_string(page));
  }
}

// The CPU's choice per query head (pages sorted), through QuestPageIndex over each KV
// head's own length.
std::vector<std::vector<std::vector<int64_t>>> CpuPages(const DecodeCase& c, int page,
                                                        int64_t budget, bool shared) {
  std::vector<std::vector<std::vector<int64_t>>> out(c.batch);
  for (int b = 0; b < c.batch; ++b) {
    out[b].resize(c.hq());
    for (int g = 0; g < c.hkv; ++g) {
      const int64_t len = c.lengths[b * c.hkv + g];
      if (len == 0) continue;
      kernels::TensorView keys{
          &c.k_f[c.kv_index(b, g, 0, 0)], 1, len, c.dim, c.capacity * c.dim, c.dim};
      kernels::TensorView q{&c.q_f[c.q_index(b, g * c.group, 0)], c.group, 1, c.dim, c.dim, c.dim};
      kernels::QuestPageIndex index(keys, page);
      auto pages = index.Select(q, 0, budget, shared);
      for (int j = 0; j < c.group; ++j) out[b][g * c.group + j] = pages[j];
    }
  }
  return out;
}

// The CPU's float64 score of page pg for list heads [h0, h0 + nh) of sequence b.
double CpuScore(const DecodeCase& c, int b, int h0, int nh, int64_t pg, int page) {
  const int g = h0 / c.group;
  const int64_t len = c.lengths[b * c.hkv + g];
  double s = 0;
  for (int h = h0; h < h0 + nh; ++h) {
    for (int dd = 0; dd < c.dim; ++dd) {
      float lo = INFINITY, hi = -INFINITY;
      for (int64_t r = pg * page; r < std::min<int64_t>(len, (pg + 1) * page); ++r) {
        lo = std::min(lo, c.k_f[c.kv_index(b, g, r, dd)]);
        hi = std::max(hi, c.k_f[c.kv_index(b, g, r, dd)]);
      }
      const double qd = c.q_f[c.q_index(b, h, dd)];
      s += std::max(qd * lo, qd * hi);
    }
  }
  return s;
}

GpuSelection RunSelect(const DeviceQuest& d, const QuestSelectArgs& args) {
  AttentionParams p = d.p;
  const int64_t ws = QuestSelectWorkspaceBytes(p, d.meta, args);
  DeviceArray<char> workspace(ws);
  EXPECT_EQ(cudaMemset(workspace.get(), 0, ws), cudaSuccess);
  p.workspace = workspace.get();
  p.workspace_bytes = ws;
  const int lists = (args.gqa_shared ? p.num_kv_heads : p.num_q_heads) * p.batch;
  DeviceArray<int32_t> offsets(lists + 1), pages(lists * (args.budget_pages + 1));
  cudaMemset(offsets.get(), 0xff, (lists + 1) * 4);
  const absl::Status s = QuestSelectPages(p, d.meta, args, {offsets.get(), pages.get()});
  EXPECT_TRUE(s.ok()) << s;
  GpuSelection out;
  EXPECT_EQ(offsets.Download(&out.offsets), cudaSuccess);
  EXPECT_EQ(pages.Download(&out.pages), cudaSuccess);
  return out;
}

// Compares GPU lists with the CPU's; a difference is accepted only between pages whose
// float64 scores are within 1e-5 (relative) of each other, i.e. a float32 near-tie.
void ExpectSameSelection(const DecodeCase& c, int page, const QuestSelectArgs& args,
                         const GpuSelection& gpu, const std::string& what) {
  const auto cpu = CpuPages(c, page, args.budget_pages, args.gqa_shared);
  const int lists = args.gqa_shared ? c.hkv : c.hq();
  ASSERT_EQ(gpu.offsets[0], 0) << what;
  for (int b = 0; b < c.batch; ++b) {
    for (int li = 0; li < lists; ++li) {
      const int64_t idx = static_cast<int64_t>(b) * lists + li;
      const int h0 = args.gqa_shared ? li * c.group : li;
      const int nh = args.gqa_shared ? c.group : 1;
      const std::vector<int32_t> got(gpu.pages.begin() + gpu.offsets[idx],
                                     gpu.pages.begin() + gpu.offsets[idx + 1]);
      ASSERT_TRUE(std::is_sorted(got.begin(), got.end())) << what;
      const std::vector<int64_t>& want = cpu[b][h0];
      ASSERT_EQ(got.size(), want.size()) << what << " list " << idx;
      std::set<int64_t> only_gpu(got.begin(), got.end()), only_cpu;
      for (int64_t pg : want) {
        if (!only_gpu.erase(pg)) only_cpu.insert(pg);
      }
      for (int64_t a : only_gpu) {
        for (int64_t bpg : only_cpu) {
          const double sa = CpuScore(c, b, h0, nh, a, page);
          const double sb = CpuScore(c, b, h0, nh, bpg, page);
          EXPECT_LE(std::abs(sa - sb), 1e-5 * std::max(std::abs(sa), std::abs(sb)))
              << what << " list " << idx << ": GPU took page " << a << " (" << sa << "), CPU page "
              << bpg << " (" << sb << ")";
        }
      }
    }
  }
}

TEST(QuestSelectPages, SharedAndPerHeadEveryBudget_EqualCpuSelectAsSets) {
  for (int group : {1, 4, 7, 8}) {
    const DecodeCase c = MakeCase(2, 2, group, 128, {100003, 4097, 17, 33333}, 50 + group);
    DeviceQuest d;
    ASSERT_NO_FATAL_FAILURE(Upload(c, 16, &d));
    ASSERT_TRUE(QuestUpdatePages(d.p, d.meta, d.p.max_kv_length).ok());
    for (bool shared : {true, false}) {
      for (int64_t budget : {1, 10, 625, 10000}) {
        const QuestSelectArgs args{budget, shared};
        const std::string what = "group " + std::to_string(group) +
                                 (shared ? " shared" : " per-head") + " budget " +
                                 std::to_string(budget);
        ExpectSameSelection(c, 16, args, RunSelect(d, args), what);
      }
    }
  }
}

TEST(QuestSelectPages, HeadDims64And256AndOddPage_EqualCpuSelectAsSets) {
  for (int dim : {64, 256}) {
    const DecodeCase c = MakeCase(1, 2, 4, dim, {20011, 5000}, 60 + dim);
    DeviceQuest d;
    ASSERT_NO_FATAL_FAILURE(Upload(c, 13, &d));
    ASSERT_TRUE(QuestUpdatePages(d.p, d.meta, d.p.max_kv_length).ok());
    const QuestSelectArgs args{100, true};
    ExpectSameSelection(c, 13, args, RunSelect(d, args), "D " + std::to_string(dim));
  }
}

TEST(QuestDecode, SelectThenPagedDecode_MatchesCpuDecodeAttention) {
  const DecodeCase c = MakeCase(1, 2, 4, 128, {20000, 20000}, 70, 3.0f);
  DeviceQuest d;
  ASSERT_NO_FATAL_FAILURE(Upload(c, 16, &d));
  ASSERT_TRUE(QuestUpdatePages(d.p, d.meta, d.p.max_kv_length).ok());
  const QuestSelectArgs args{125, true};  // token_budget 2000
  AttentionParams p = d.p;
  const int64_t ws = QuestSelectWorkspaceBytes(p, d.meta, args);
  const int64_t max_rows = QuestMaxSelectedRows(d.meta, args);
  const PageSelection heads_only{{c.hkv}, 16, nullptr, nullptr};
  absl::StatusOr<DecodePlan> plan = PlanSparseDecode(p, heads_only.heads, max_rows);
  ASSERT_TRUE(plan.ok()) << plan.status();
  DeviceArray<char> select_ws(ws), decode_ws(std::max<int64_t>(plan->workspace_bytes, 1));
  ASSERT_EQ(cudaMemset(select_ws.get(), 0, ws), cudaSuccess);
  DeviceArray<int32_t> offsets(c.hkv + 1), pages(c.hkv * (args.budget_pages + 1));
  p.workspace = select_ws.get();
  p.workspace_bytes = ws;
  ASSERT_TRUE(QuestSelectPages(p, d.meta, args, {offsets.get(), pages.get()}).ok());
  p.workspace = decode_ws.get();
  p.workspace_bytes = plan->workspace_bytes;
  const PageSelection sel{{c.hkv}, 16, offsets.get(), pages.get()};
  ASSERT_TRUE(PagedDecode(p, sel, max_rows).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<uint16_t> bits;
  ASSERT_EQ(d.out.Download(&bits), cudaSuccess);
  std::vector<double> out(bits.size());
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = FromBf16(bits[i]);
    ASSERT_TRUE(std::isfinite(out[i])) << "output " << i << " not written";
  }
  // The CPU method end to end: prompt = the first length - 1 rows, one decode step.
  const ParamMap qp = {
      {"page", int64_t{16}}, {"gqa_shared", true}, {"token_budget", int64_t{2000}}};
  kernels::AttentionInput in;
  in.q = {c.q_f.data(), c.hq(), 1, c.dim, c.dim, c.dim};
  in.k = {c.k_f.data(), c.hkv, 20000, c.dim, c.capacity * c.dim, c.dim};
  in.v = {c.v_f.data(), c.hkv, 20000, c.dim, c.capacity * c.dim, c.dim};
  in.q_offset = 19999;
  absl::StatusOr<kernels::AttentionResult> cpu =
      kernels::testing::DecodeAttentionTyped("quest", qp, in, kernels::TensorView{});
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  std::vector<double> ref(out.size());
  for (int h = 0; h < c.hq(); ++h) {
    for (int dd = 0; dd < c.dim; ++dd) ref[h * c.dim + dd] = cpu->output.Row(h, 0)[dd];
  }
  // Tolerance from the naive same-precision decode over the CPU's rows.
  std::vector<HeadRows> rows(1, HeadRows(c.hq()));
  std::vector<kernels::KeyRange> ranges;
  for (int h = 0; h < c.hq(); ++h) {
    cpu->selection->Row(h, 0, &ranges);
    for (const auto& r : ranges) {
      for (int64_t x = r.begin; x < r.end; ++x) rows[0][h].push_back(x);
    }
  }
  const double err = testing::RelativeError(out, ref);
  const double naive = testing::RelativeError(testing::NaiveDecode(c, rows), ref);
  EXPECT_LE(err, 2.0 * naive + 1e-5) << "naive " << naive;
}

// Small sizes over every Quest kernel, for compute-sanitizer runs.
TEST(QuestSmall, EveryPath_ForSanitizers) {
  const DecodeCase c = MakeCase(2, 2, 4, 128, {300, 17, 1, 129}, 90);
  DeviceQuest d;
  ASSERT_NO_FATAL_FAILURE(Upload(c, 16, &d));
  ASSERT_TRUE(QuestUpdatePages(d.p, d.meta, d.p.max_kv_length).ok());
  ASSERT_TRUE(QuestUpdatePages(d.p, d.meta, 1).ok());
  ExpectMetadata(c, d, "small");
  for (bool shared : {true, false}) {
    for (int64_t budget : {1, 3, 100}) {
      const QuestSelectArgs args{budget, shared};
      ExpectSameSelection(c, 16, args, RunSelect(d, args), "small");
    }
  }
}

}  // namespace
}  // namespace sf::cuda
