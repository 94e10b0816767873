// tri_shape's closed form: the exact pair count of its rule, the round trip between a
// compression target and the window, and the dense budget at compression 1.
#include <cstdint>

#include "gtest/gtest.h"
#include "methods/registry.h"

namespace sf {
namespace {

// Pairs of the rule counted row by row (docs/methods.md, tri_shape).
double CountedPairs(int64_t sink, int64_t window, int64_t last_q, int64_t n) {
  double pairs = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (i >= n - last_q) {
      pairs += i + 1;
      continue;
    }
    int64_t keys = 0;
    for (int64_t j = 0; j <= i; ++j) keys += (j < sink || j > i - window) ? 1 : 0;
    pairs += keys;
  }
  return pairs;
}

ParamMap Params(int64_t sink, int64_t last_q, int64_t window) {
  return {{"sink", sink}, {"last_q", last_q}, {"window", window}};
}

TEST(TriShape, NominalCompression_IsTheExactPairCount) {
  for (int64_t n : {1, 7, 64, 300}) {
    for (int64_t last_q : {0, 5, 64, 400}) {
      for (int64_t window : {1, 3, 50, 300}) {
        const double want = CausalPairs(n) / CountedPairs(4, window, last_q, n);
        absl::StatusOr<double> got = NominalCompression("tri_shape", Params(4, last_q, window), n);
        ASSERT_TRUE(got.ok()) << got.status();
        EXPECT_DOUBLE_EQ(*got, want) << n << " " << last_q << " " << window;
      }
    }
  }
}

TEST(TriShape, CompressionMapping_RoundTripsAndOneIsDense) {
  for (double target : {2.0, 4.0, 10.0}) {
    absl::StatusOr<ParamMap> p = ParamsForCompression("tri_shape", {}, target, 16384);
    ASSERT_TRUE(p.ok()) << p.status();
    absl::StatusOr<double> back = NominalCompression("tri_shape", *p, 16384);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_NEAR(*back / target, 1.0, 0.01) << target;
  }
  absl::StatusOr<ParamMap> one = ParamsForCompression("tri_shape", {}, 1.0, 4096);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(std::get<int64_t>(one->at("window")), 4096);
  // The dense last rows bound the compression: an unreachable target gives window 1.
  absl::StatusOr<ParamMap> far = ParamsForCompression("tri_shape", {}, 1e6, 1024);
  ASSERT_TRUE(far.ok()) << far.status();
  EXPECT_EQ(std::get<int64_t>(far->at("window")), 1);
}

TEST(TriShape, RegistryEntry_PrefillOnlyWithoutEstimation) {
  const MethodInfo* m = FindMethod("tri_shape");
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->phases.Has(Phase::kPrefill));
  EXPECT_FALSE(m->phases.Has(Phase::kDecode));
  EXPECT_STREQ(m->budget_param, "window");
  absl::StatusOr<double> flops = EstimationFlops("tri_shape", {2.0e6, 4096, 16, {}});
  ASSERT_TRUE(flops.ok());
  EXPECT_EQ(*flops, 0.0);
  EXPECT_FALSE(NominalCompression("tri_shape", Params(4, -1, 8), 64).ok());
}

}  // namespace
}  // namespace sf
