// The engine's kernels against references on the host: dense attention in float32 and bf16
// against float64 (uneven per-head lengths as after eviction, GQA, head dims that are not
// multiples of 32, lengths that are not multiples of any tile, decode split over many
// chunks), KV append, Quest page bounds, weight conversion and random weights.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "kernels/cuda/attention/dense.h"
#include "kernels/cuda/engine_ops.h"
#include "kernels/cuda/testing/device_vector.h"

namespace sf::cuda {
namespace {

using testing::Device;

std::vector<float> Random(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// The element type's bits of host floats, and back.
template <typename T>
std::vector<T> Encode(const std::vector<float>& x) {
  if constexpr (std::is_same_v<T, float>) {
    return x;
  } else {
    std::vector<T> out(x.size());
    for (size_t i = 0; i < x.size(); ++i) out[i] = __float2bfloat16_rn(x[i]);
    return out;
  }
}
template <typename T>
std::vector<float> Decode(const std::vector<T>& x) {
  if constexpr (std::is_same_v<T, float>) {
    return x;
  } else {
    std::vector<float> out(x.size());
    for (size_t i = 0; i < x.size(); ++i) out[i] = __bfloat162float(x[i]);
    return out;
  }
}

struct AttentionCase {
  int64_t n;  // new queries
  int head_dim;
  int64_t before0, before1;  // rows held before the queries, per KV head
};

// Runs DenseAttention in element type T over inputs rounded to T, and returns the largest
// absolute error against a float64 reference on those same (rounded) inputs.
template <typename T>
double AttentionError(const AttentionCase& p) {
  const int hq = 6, hkv = 2, d = p.head_dim;
  const int64_t before[2] = {p.before0, p.before1};
  const int32_t lengths[2] = {static_cast<int32_t>(p.before0 + p.n),
                              static_cast<int32_t>(p.before1 + p.n)};
  const int64_t max_len = std::max(lengths[0], lengths[1]);
  const int64_t capacity = max_len + 5;
  std::mt19937 rng(static_cast<unsigned>(p.n * 1000 + d));
  const std::vector<float> keys = Decode(Encode<T>(Random(hkv * capacity * d, rng)));
  const std::vector<float> values = Decode(Encode<T>(Random(keys.size(), rng)));
  const int64_t q_stride = hq * d + 7, out_stride = hq * d + 3;
  const std::vector<float> q = Decode(Encode<T>(Random(p.n * q_stride, rng)));
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));

  Device<T> dk(Encode<T>(keys)), dv(Encode<T>(values)), dq(Encode<T>(q));
  Device<int32_t> dlen(std::vector<int32_t>{lengths[0], lengths[1]});
  Device<T> dout(Encode<T>(std::vector<float>(p.n * out_stride, -7.0f)));
  const int64_t ws_bytes = DenseDecodeWorkspaceBytes(hq, d, max_len);
  Device<float> dws(std::vector<float>(ws_bytes / sizeof(float), 0.0f));
  AttentionParams a;
  a.q = dq.get();
  a.q_row_stride = q_stride;
  a.q_head_stride = d;
  a.k = dk.get();
  a.v = dv.get();
  a.kv_head_stride = capacity * d;
  a.kv_row_stride = d;
  a.kv_lengths = dlen.get();
  a.max_kv_length = max_len;
  a.num_queries = p.n;
  a.num_q_heads = hq;
  a.num_kv_heads = hkv;
  a.head_dim = d;
  a.softmax_scale = scale;
  a.out = dout.get();
  a.out_row_stride = out_stride;
  a.out_head_stride = d;
  a.workspace = dws.get();
  a.workspace_bytes = ws_bytes;
  a.dtype = std::is_same_v<T, float> ? AttnDType::kF32 : AttnDType::kBf16;
  SF_EXPECT_OK(DenseAttention(a));
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> out = Decode(dout.Download());

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
      EXPECT_EQ(out[j * out_stride + c], -7.0f) << "wrote past the row";
    }
  }
  return worst;
}

class DenseAttentionTest : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(DenseAttentionTest, Float32MatchesDoubleReference) {
  EXPECT_LE(AttentionError<float>(GetParam()), 2e-5);
}

// Outputs are averages of values of about unit size, rounded once to bf16 (8 bits of
// mantissa): within 2^-8 of the largest, plus float32 accumulation.
TEST_P(DenseAttentionTest, Bf16MatchesDoubleReference) {
  EXPECT_LE(AttentionError<bf16>(GetParam()), 1.6e-2);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, DenseAttentionTest,
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
  const std::vector<int32_t> lengths = {0, 7, 11};
  std::mt19937 rng(3);
  const std::vector<float> src = Random(static_cast<size_t>(n * row_stride), rng);
  Device<float> dk(std::vector<float>(hkv * capacity * d, 0.0f));
  Device<float> dv(std::vector<float>(hkv * capacity * d, 0.0f));
  Device<int32_t> dlen(lengths);
  Device<float> dsrc(src);
  DeviceKvLayer<float> layer{dk.get(), dv.get(), dlen.get(), capacity, hkv, d};
  // Keys at the start of each row, values after them.
  SF_ASSERT_OK(AppendKv(layer, dsrc.get(), dsrc.get() + hkv * d, n, row_stride, nullptr));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> k = dk.Download(), v = dv.Download();
  const std::vector<int32_t> grown = dlen.Download();
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

// silu(gate) * up against the host, on the vectorised path (I a multiple of the vector
// width) and the scalar one (odd I): float32 within 1e-6 relative, bf16 within one bf16
// rounding of the host value.
template <typename T>
void CheckSiluMul(int64_t n, int64_t I) {
  std::mt19937 rng(static_cast<unsigned>(n * 31 + I));
  const std::vector<float> gate_up = Decode(Encode<T>(Random(n * 2 * I, rng)));
  Device<T> in(Encode<T>(gate_up));
  Device<T> out(Encode<T>(std::vector<float>(n * I, -9.0f)));
  SF_ASSERT_OK(SiluMul(in.get(), n, I, out.get(), nullptr));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> got = Decode(out.Download());
  const double tolerance = std::is_same_v<T, float> ? 1e-6 : 1.0 / 128;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t j = 0; j < I; ++j) {
      const double g = gate_up[r * 2 * I + j], u = gate_up[r * 2 * I + I + j];
      const double want = g / (1 + std::exp(-g)) * u;
      ASSERT_NEAR(got[r * I + j], want, tolerance * std::max(1.0, std::abs(want)))
          << "row " << r << " column " << j;
    }
  }
}

TEST(SiluMul, VectorAndScalarPathsMatchHost) {
  CheckSiluMul<float>(7, 64);
  CheckSiluMul<float>(5, 37);
  CheckSiluMul<bf16>(9, 96);
  CheckSiluMul<bf16>(3, 35);
}

TEST(UpdatePageBounds, BoundsEveryTouchedPageOfEachHead) {
  const int hkv = 2, d = 24, page = 16;
  const int64_t capacity = 96, pages = capacity / page;
  const std::vector<int32_t> lengths = {70, 33};  // after appending n = 20 rows
  const int64_t n = 20;
  std::mt19937 rng(5);
  const std::vector<float> keys = Random(hkv * capacity * d, rng);
  Device<float> dk(keys), dv(keys);
  Device<int32_t> dlen(lengths);
  Device<float> dmin(std::vector<float>(hkv * pages * d, 99.0f));
  Device<float> dmax(std::vector<float>(hkv * pages * d, 99.0f));
  DeviceKvLayer<float> layer{dk.get(), dv.get(), dlen.get(), capacity, hkv, d};
  SF_ASSERT_OK(UpdatePageBounds(layer, n, page, pages, dmin.get(), dmax.get(), nullptr));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> mn = dmin.Download(), mx = dmax.Download();
  for (int h = 0; h < hkv; ++h) {
    for (int64_t p = 0; p < pages; ++p) {
      const bool touched = (p + 1) * page > lengths[h] - n && p * page < lengths[h];
      for (int c = 0; c < d; ++c) {
        const float got_min = mn[(h * pages + p) * d + c], got_max = mx[(h * pages + p) * d + c];
        if (!touched) {
          ASSERT_EQ(got_min, 99.0f) << "page " << p << " of head " << h << " was not touched";
          continue;
        }
        float lo = 1e30f, hi = -1e30f;
        for (int64_t r = p * page; r < std::min<int64_t>((p + 1) * page, lengths[h]); ++r) {
          lo = std::min(lo, keys[(h * capacity + r) * d + c]);
          hi = std::max(hi, keys[(h * capacity + r) * d + c]);
        }
        ASSERT_EQ(got_min, lo) << "head " << h << " page " << p;
        ASSERT_EQ(got_max, hi) << "head " << h << " page " << p;
      }
    }
  }
}

TEST(ConvertWeights, Float16AndBf16AndFloat32ToBf16AreExactRoundings) {
  std::mt19937 rng(9);
  const std::vector<float> x = Random(1001, rng);
  std::vector<__half> halves(x.size());
  for (size_t i = 0; i < x.size(); ++i) halves[i] = __float2half_rn(x[i]);
  Device<float> src32(x);
  Device<__half> src16(halves);
  Device<bf16> out{std::vector<bf16>(x.size())};
  SF_ASSERT_OK(ConvertWeights(src32.get(), WeightSource::kF32, 1001, out.get(), nullptr));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> got = Decode(out.Download());
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(got[i], __bfloat162float(__float2bfloat16_rn(x[i])));
  }
  Device<float> out32{std::vector<float>(x.size())};
  SF_ASSERT_OK(ConvertWeights(src16.get(), WeightSource::kF16, 1001, out32.get(), nullptr));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  got = out32.Download();
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(got[i], __half2float(halves[i]));
}

TEST(FillRandomNormal, SameValuesInBothTypesWithUnitMoments) {
  const int64_t n = 1 << 20;
  Device<float> f{std::vector<float>(n)};
  Device<bf16> b{std::vector<bf16>(n)};
  SF_ASSERT_OK(FillRandomNormal(f.get(), n, 42, 0.5f, 2.0f, nullptr));
  SF_ASSERT_OK(FillRandomNormal(b.get(), n, 42, 0.5f, 2.0f, nullptr));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> fv = f.Download(), bv = Decode(b.Download());
  ASSERT_EQ(fv, bv);
  double sum = 0, sq = 0;
  for (float x : fv) {
    sum += x;
    sq += double{x} * x;
  }
  const double mean = sum / n, var = sq / n - mean * mean;
  EXPECT_NEAR(mean, 0.5, 0.01);
  EXPECT_NEAR(std::sqrt(var), 2.0, 0.01);
}

}  // namespace
}  // namespace sf::cuda
