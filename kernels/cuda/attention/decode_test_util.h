// Test helpers shared by the decode GPU tests: bf16 rounding on the host, device buffers,
// random caches with poisoned spare rows, and the CPU references (kernels/cpu/attention.h,
// float64) plus a naive same-precision decode that sets each comparison's tolerance.
#ifndef SF_KERNELS_CUDA_ATTENTION_DECODE_TEST_UTIL_H_
#define SF_KERNELS_CUDA_ATTENTION_DECODE_TEST_UTIL_H_

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/attention.h"
#include "kernels/cuda/attention/decode.h"

namespace sf::cuda::testing {

inline uint16_t ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float FromBf16(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float RoundBf16(float f) { return FromBf16(ToBf16(f)); }
inline constexpr uint16_t kBf16Nan = 0xffff;

#define SF_CUDA_ASSERT(call) ASSERT_EQ((call), cudaSuccess) << #call

// A device allocation freed on destruction.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t n) : n_(n) {
    if (n > 0 && cudaMalloc(&p_, n * sizeof(T)) != cudaSuccess) p_ = nullptr;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      if (p_ != nullptr) cudaFree(p_);
      p_ = o.p_;
      n_ = o.n_;
      o.p_ = nullptr;
    }
    return *this;
  }
  ~DeviceArray() {
    if (p_ != nullptr) cudaFree(p_);
  }
  T* get() const { return p_; }
  size_t size() const { return n_; }
  cudaError_t Upload(const std::vector<T>& h) const {
    return cudaMemcpy(p_, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice);
  }
  cudaError_t Download(std::vector<T>* h) const {
    h->resize(n_);
    return cudaMemcpy(h->data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost);
  }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

// Host copy of a batch of decode inputs: per sequence b, queries [Hq][D], a cache
// [Hkv][capacity][D] (rows past each head's length hold NaN, so a kernel that reads them
// fails) and lengths [Hkv]. Values are bf16; `*_f` are the same values as floats.
struct DecodeCase {
  int batch = 1, hkv = 1, group = 1, dim = 128;
  int64_t capacity = 0;
  std::vector<int32_t> lengths;  // [batch][hkv]
  std::vector<uint16_t> q, k, v;
  std::vector<float> q_f, k_f, v_f;
  int hq() const { return hkv * group; }
  int64_t kv_index(int b, int g, int64_t row, int d) const {
    return ((static_cast<int64_t>(b) * hkv + g) * capacity + row) * dim + d;
  }
  int64_t q_index(int b, int h, int d) const {
    return (static_cast<int64_t>(b) * hq() + h) * dim + d;
  }
};

// Random N(0, 1) keys and values, queries N(0, q_scale^2) (a larger scale gives peakier
// softmax rows). Lengths per (sequence, KV head) as given.
inline DecodeCase MakeCase(int batch, int hkv, int group, int dim, std::vector<int32_t> lengths,
                           uint32_t seed, float q_scale = 1.0f) {
  DecodeCase c;
  c.batch = batch;
  c.hkv = hkv;
  c.group = group;
  c.dim = dim;
  c.lengths = std::move(lengths);
  int64_t cap = 1;
  for (int32_t l : c.lengths) cap = std::max<int64_t>(cap, l);
  c.capacity = cap + 3;  // spare rows, poisoned
  std::mt19937 rng(seed);
  std::normal_distribution<float> n01(0.0f, 1.0f);
  const int64_t kv_size = static_cast<int64_t>(batch) * hkv * c.capacity * dim;
  c.k.assign(kv_size, kBf16Nan);
  c.v.assign(kv_size, kBf16Nan);
  c.k_f.assign(kv_size, NAN);
  c.v_f.assign(kv_size, NAN);
  for (int b = 0; b < batch; ++b) {
    for (int g = 0; g < hkv; ++g) {
      for (int64_t r = 0; r < c.lengths[b * hkv + g]; ++r) {
        for (int d = 0; d < dim; ++d) {
          const int64_t i = c.kv_index(b, g, r, d);
          c.k[i] = ToBf16(n01(rng));
          c.v[i] = ToBf16(n01(rng));
          c.k_f[i] = FromBf16(c.k[i]);
          c.v_f[i] = FromBf16(c.v[i]);
        }
      }
    }
  }
  const int64_t q_size = static_cast<int64_t>(batch) * c.hq() * dim;
  c.q.resize(q_size);
  c.q_f.resize(q_size);
  for (int64_t i = 0; i < q_size; ++i) {
    c.q[i] = ToBf16(q_scale * n01(rng));
    c.q_f[i] = FromBf16(c.q[i]);
  }
  return c;
}

// Rows each query head of one sequence attends to: sorted ascending cache rows.
using HeadRows = std::vector<std::vector<int64_t>>;  // [hq]

// A CPU Selection over explicit per-head rows (query row 0 only).
class RowsSelection : public kernels::Selection {
 public:
  explicit RowsSelection(HeadRows rows) : rows_(std::move(rows)) {}
  void Row(int64_t h, int64_t /*i*/, std::vector<kernels::KeyRange>* out) const override {
    out->clear();
    for (int64_t r : rows_[h]) {
      if (!out->empty() && out->back().end == r) {
        out->back().end = r + 1;
      } else {
        out->push_back({r, r + 1});
      }
    }
  }

 private:
  HeadRows rows_;
};

// Reference outputs [batch][hq][dim] and natural-log lse [batch][hq], float64, for the
// given rows per (sequence, query head), through kernels::AttendSelected (the executor of
// every CPU method). A head with no rows is zeros and lse -inf.
struct Reference {
  std::vector<double> out;
  std::vector<double> lse;
};

inline Reference ReferenceDecode(const DecodeCase& c, const std::vector<HeadRows>& rows) {
  Reference ref;
  ref.out.assign(static_cast<size_t>(c.batch) * c.hq() * c.dim, 0.0);
  ref.lse.assign(static_cast<size_t>(c.batch) * c.hq(), -INFINITY);
  kernels::ParallelFor(static_cast<int64_t>(c.batch) * c.hq(), 0, [&](int64_t unit) {
    const int b = static_cast<int>(unit / c.hq()), h = static_cast<int>(unit % c.hq());
    {
      const int g = h / c.group;
      const std::vector<int64_t>& rr = rows[b][h];
      if (rr.empty()) return;
      kernels::AttentionInput in;
      in.q = {&c.q_f[c.q_index(b, h, 0)], 1, 1, c.dim, c.dim, c.dim};
      const int64_t len = rr.back() + 1;
      in.k = {&c.k_f[c.kv_index(b, g, 0, 0)], 1, len, c.dim, c.capacity * c.dim, c.dim};
      in.v = {&c.v_f[c.kv_index(b, g, 0, 0)], 1, len, c.dim, c.capacity * c.dim, c.dim};
      in.q_offset = len - 1;
      kernels::AttentionResult r =
          kernels::AttendSelected(in, std::make_shared<RowsSelection>(HeadRows{rr}));
      for (int d = 0; d < c.dim; ++d) ref.out[c.q_index(b, h, d)] = r.output.Row(0, 0)[d];
      ref.lse[b * c.hq() + h] = r.row_lse[0];
    }
  });
  return ref;
}

// The same decode in the kernel's precision, written plainly: float32 scores and softmax,
// probabilities rounded to bf16 before p.v, float32 sums, output rounded to bf16.
inline std::vector<double> NaiveDecode(const DecodeCase& c, const std::vector<HeadRows>& rows) {
  std::vector<double> out(static_cast<size_t>(c.batch) * c.hq() * c.dim, 0.0);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.dim));
  std::vector<float> s, acc(c.dim);
  for (int b = 0; b < c.batch; ++b) {
    for (int h = 0; h < c.hq(); ++h) {
      const int g = h / c.group;
      const std::vector<int64_t>& rr = rows[b][h];
      if (rr.empty()) continue;
      s.resize(rr.size());
      float mx = -INFINITY;
      for (size_t j = 0; j < rr.size(); ++j) {
        float dot = 0.0f;
        for (int d = 0; d < c.dim; ++d) {
          dot += c.q_f[c.q_index(b, h, d)] * c.k_f[c.kv_index(b, g, rr[j], d)];
        }
        s[j] = dot * scale;
        mx = std::max(mx, s[j]);
      }
      float l = 0.0f;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (size_t j = 0; j < rr.size(); ++j) {
        const float p = std::exp(s[j] - mx);
        l += p;
        const float pb = RoundBf16(p);
        for (int d = 0; d < c.dim; ++d) acc[d] += pb * c.v_f[c.kv_index(b, g, rr[j], d)];
      }
      for (int d = 0; d < c.dim; ++d) out[c.q_index(b, h, d)] = RoundBf16(acc[d] / l);
    }
  }
  return out;
}

// ||a - ref|| / ||ref|| (1 when ref is all zeros and a is not).
inline double RelativeError(const std::vector<double>& a, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - ref[i]) * (a[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  if (den == 0) return num == 0 ? 0.0 : 1.0;
  return std::sqrt(num / den);
}

// Every row [0, length) of each query head's KV head (dense decode).
inline std::vector<HeadRows> DenseRowsOf(const DecodeCase& c) {
  std::vector<HeadRows> rows(c.batch, HeadRows(c.hq()));
  for (int b = 0; b < c.batch; ++b) {
    for (int h = 0; h < c.hq(); ++h) {
      const int32_t len = c.lengths[b * c.hkv + h / c.group];
      for (int64_t r = 0; r < len; ++r) rows[b][h].push_back(r);
    }
  }
  return rows;
}

// Device copies of a case plus the params that describe them.
struct DeviceCase {
  DeviceArray<uint16_t> q, k, v, out;
  DeviceArray<int32_t> lengths;
  DeviceArray<float> lse;
  DeviceArray<char> workspace;
  AttentionParams p;
};

inline void Upload(const DecodeCase& c, DeviceCase* d) {
  d->q = DeviceArray<uint16_t>(c.q.size());
  d->k = DeviceArray<uint16_t>(c.k.size());
  d->v = DeviceArray<uint16_t>(c.v.size());
  d->out = DeviceArray<uint16_t>(c.q.size());
  d->lengths = DeviceArray<int32_t>(c.lengths.size());
  d->lse = DeviceArray<float>(static_cast<size_t>(c.batch) * c.hq());
  ASSERT_EQ(d->q.Upload(c.q), cudaSuccess);
  ASSERT_EQ(d->k.Upload(c.k), cudaSuccess);
  ASSERT_EQ(d->v.Upload(c.v), cudaSuccess);
  ASSERT_EQ(d->lengths.Upload(c.lengths), cudaSuccess);
  // Poison: NaN outputs and lse, so an unwritten element fails the comparison.
  ASSERT_EQ(cudaMemset(d->out.get(), 0xff, c.q.size() * 2), cudaSuccess);
  ASSERT_EQ(cudaMemset(d->lse.get(), 0xff, d->lse.size() * 4), cudaSuccess);
  AttentionParams& p = d->p;
  p.q = d->q.get();
  p.q_head_stride = c.dim;
  p.q_row_stride = static_cast<int64_t>(c.hq()) * c.dim;
  p.q_batch_stride = static_cast<int64_t>(c.hq()) * c.dim;
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
  p.out_row_stride = static_cast<int64_t>(c.hq()) * c.dim;
  p.out_batch_stride = static_cast<int64_t>(c.hq()) * c.dim;
  p.lse = d->lse.get();
  p.batch = c.batch;
}

inline void AllocateWorkspace(const DecodePlan& plan, DeviceCase* d) {
  d->workspace = DeviceArray<char>(static_cast<size_t>(plan.workspace_bytes));
  d->p.workspace = d->workspace.get();
  d->p.workspace_bytes = plan.workspace_bytes;
}

// Downloads the result and compares it with the float64 reference over `rows`.
inline void ExpectMatches(const DecodeCase& c, const DeviceCase& d,
                          const std::vector<HeadRows>& rows, const std::string& what) {
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << what;
  std::vector<uint16_t> out_bits;
  std::vector<float> lse;
  ASSERT_EQ(d.out.Download(&out_bits), cudaSuccess);
  ASSERT_EQ(d.lse.Download(&lse), cudaSuccess);
  std::vector<double> out(out_bits.size());
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = FromBf16(out_bits[i]);
    ASSERT_TRUE(std::isfinite(out[i])) << what << ": output element " << i << " not written";
  }
  const Reference ref = ReferenceDecode(c, rows);
  const std::vector<double> naive = NaiveDecode(c, rows);
  const double err = RelativeError(out, ref.out);
  const double naive_err = RelativeError(naive, ref.out);
  EXPECT_LE(err, 2.0 * naive_err + 1e-5) << what << ": naive same-precision error " << naive_err;
  for (size_t i = 0; i < lse.size(); ++i) {
    if (std::isinf(ref.lse[i])) {
      EXPECT_TRUE(std::isinf(lse[i]) && lse[i] < 0) << what << ": lse " << i << " = " << lse[i];
    } else {
      EXPECT_NEAR(lse[i], ref.lse[i], 2e-3 * std::max(1.0, std::abs(ref.lse[i])))
          << what << ": lse of head " << i;
    }
  }
}

}  // namespace sf::cuda::testing

#endif  // SF_KERNELS_CUDA_ATTENTION_DECODE_TEST_UTIL_H_
