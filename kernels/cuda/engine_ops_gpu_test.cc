// The engine's attention and KV-append kernels against a double-precision reference on the
// host: uneven per-head lengths (as after eviction), GQA, head dims that are not multiples
// of 32, lengths that are not multiples of any tile, decode split over many chunks.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "kernels/cuda/engine_ops.h"

namespace sf::cuda {
namespace {

// A device copy of a host vector, freed at scope exit.
template <typename T>
class Device {
 public:
  explicit Device(const std::vector<T>& host) : size_(host.size()) {
    EXPECT_EQ(cudaMalloc(&ptr_, std::max<size_t>(1, size_) * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(ptr_, host.data(), size_ * sizeof(T), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  ~Device() { cudaFree(ptr_); }
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  T* get() const { return ptr_; }
  std::vector<T> Download() const {
    std::vector<T> host(size_);
    EXPECT_EQ(cudaMemcpy(host.data(), ptr_, size_ * sizeof(T), cudaMemcpyDeviceToHost),
              cudaSuccess);
    return host;
  }

 private:
  T* ptr_ = nullptr;
  size_t size_ = 0;
};

std::vector<float> Random(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

struct AttentionCase {
  int64_t n;  // new queries
  int head_dim;
  int64_t before0, before1;  // rows held before the queries, per KV head
};

class CausalAttentionTest : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(CausalAttentionTest, MatchesDoubleReference) {
  const AttentionCase p = GetParam();
  const int hq = 6, hkv = 2, d = p.head_dim;
  const int64_t before[2] = {p.before0, p.before1};
  const int64_t lengths[2] = {p.before0 + p.n, p.before1 + p.n};
  const int64_t capacity = std::max(lengths[0], lengths[1]) + 5;
  std::mt19937 rng(static_cast<unsigned>(p.n * 1000 + d));
  const std::vector<float> keys = Random(static_cast<size_t>(hkv * capacity * d), rng);
  const std::vector<float> values = Random(keys.size(), rng);
  const int64_t q_stride = hq * d + 7, out_stride = hq * d + 3;
  const std::vector<float> q = Random(static_cast<size_t>(p.n * q_stride), rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));

  Device<float> dk(keys), dv(values), dq(q);
  Device<int64_t> dlen(std::vector<int64_t>{lengths[0], lengths[1]});
  Device<float> dout(std::vector<float>(static_cast<size_t>(p.n * out_stride), -7.0f));
  Device<float> dws(std::vector<float>(
      static_cast<size_t>(DecodeWorkspaceFloats(hq, d, std::max(lengths[0], lengths[1]))), 0.0f));
  AttentionArgs args;
  args.q = dq.get();
  args.q_row_stride = q_stride;
  args.layer = {dk.get(), dv.get(), dlen.get(), capacity, hkv, d};
  args.n = p.n;
  args.num_q_heads = hq;
  args.softmax_scale = scale;
  args.max_length = std::max(lengths[0], lengths[1]);
  args.out = dout.get();
  args.out_row_stride = out_stride;
  args.workspace = dws.get();
  SF_ASSERT_OK(CausalAttention(args, nullptr));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> out = dout.Download();

  double worst = 0;
  for (int64_t j = 0; j < p.n; ++j) {
    for (int h = 0; h < hq; ++h) {
      const int kvh = h / (hq / hkv);
      const int64_t visible = before[kvh] + j + 1;
      const float* qrow = q.data() + j * q_stride + h * d;
      std::vector<double> s(static_cast<size_t>(visible));
      double big = -1e300;
      for (int64_t r = 0; r < visible; ++r) {
        const float* k = keys.data() + (kvh * capacity + r) * d;
        double dot = 0;
        for (int c = 0; c < d; ++c) dot += double{qrow[c]} * k[c];
        s[r] = dot * scale;
        big = std::max(big, s[r]);
      }
      double sum = 0;
      for (double& x : s) sum += (x = std::exp(x - big));
      for (int c = 0; c < d; ++c) {
        double o = 0;
        for (int64_t r = 0; r < visible; ++r) o += s[r] * values[(kvh * capacity + r) * d + c];
        worst = std::max(worst, std::abs(o / sum - out[j * out_stride + h * d + c]));
      }
    }
    for (int64_t c = hq * d; c < out_stride; ++c) {
      ASSERT_EQ(out[j * out_stride + c], -7.0f) << "wrote past the row";
    }
  }
  EXPECT_LE(worst, 2e-5);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CausalAttentionTest,
    ::testing::Values(AttentionCase{1, 16, 0, 0}, AttentionCase{1, 80, 37, 5},
                      AttentionCase{1, 128, 3000, 1100}, AttentionCase{1, 256, 513, 1},
                      AttentionCase{17, 16, 0, 0}, AttentionCase{17, 80, 9, 40},
                      AttentionCase{113, 64, 0, 0}, AttentionCase{1000, 128, 0, 0},
                      AttentionCase{300, 256, 31, 100}, AttentionCase{33, 32, 64, 0}),
    [](const ::testing::TestParamInfo<AttentionCase>& shape) {
      return absl::StrCat("n", shape.param.n, "_d", shape.param.head_dim, "_before",
                          shape.param.before0, "_", shape.param.before1);
    });

TEST(AppendKv, WritesEachHeadAtItsLengthAndGrowsLengths) {
  const int hkv = 3, d = 20;
  const int64_t n = 5, capacity = 16, row_stride = 2 * hkv * d + 4;
  const std::vector<int64_t> lengths = {0, 7, 11};
  std::mt19937 rng(3);
  const std::vector<float> src = Random(static_cast<size_t>(n * row_stride), rng);
  Device<float> dk(std::vector<float>(hkv * capacity * d, 0.0f));
  Device<float> dv(std::vector<float>(hkv * capacity * d, 0.0f));
  Device<int64_t> dlen(lengths);
  Device<float> dsrc(src);
  DeviceKvLayer layer{dk.get(), dv.get(), dlen.get(), capacity, hkv, d};
  // Keys at the start of each row, values after them.
  SF_ASSERT_OK(AppendKv(layer, dsrc.get(), dsrc.get() + hkv * d, n, row_stride, nullptr));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> k = dk.Download(), v = dv.Download();
  const std::vector<int64_t> grown = dlen.Download();
  for (int h = 0; h < hkv; ++h) {
    EXPECT_EQ(grown[h], lengths[h] + n);
    for (int64_t r = 0; r < n; ++r) {
      for (int c = 0; c < d; ++c) {
        const int64_t slot = (h * capacity + lengths[h] + r) * d + c;
        ASSERT_EQ(k[slot], src[r * row_stride + h * d + c]);
        ASSERT_EQ(v[slot], src[r * row_stride + hkv * d + h * d + c]);
      }
    }
  }
}

}  // namespace
}  // namespace sf::cuda
