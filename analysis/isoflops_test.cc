#include "analysis/isoflops.h"

#include <cmath>

#include "gtest/gtest.h"

namespace sf::analysis {
namespace {

ResultPoint Point(const std::string& model, double params, int64_t len, const std::string& method,
                  double comp, double flops, double score) {
  ResultPoint p;
  p.model = model;
  p.params = params;
  p.task = "t";
  p.seq_len = len;
  p.method = method;
  p.phase = "prefill";
  p.nominal_compression = comp;
  p.flops_prefill = flops;
  p.samples = {{0, score}, {1, score}};
  return p;
}

TEST(MarkFrontier, KeepsOnlyStrictImprovements) {
  std::vector<IsoFlopsPoint> pts(4);
  const double flops[] = {1, 2, 3, 4}, scores[] = {0.5, 0.4, 0.7, 0.7};
  for (int i = 0; i < 4; ++i) {
    pts[i].flops = flops[i];
    pts[i].score = scores[i];
  }
  MarkFrontier(pts);
  EXPECT_TRUE(pts[0].on_frontier);
  EXPECT_FALSE(pts[1].on_frontier);
  EXPECT_TRUE(pts[2].on_frontier);
  EXPECT_FALSE(pts[3].on_frontier);
}

TEST(BuildIsoFlopsCurves, SkipsPointsWithoutSamples) {
  std::vector<ResultPoint> in = {Point("s", 1e9, 1024, "dense", 1, 0, 0.5),
                                 Point("s", 1e9, 1024, "quest", 2, 0, 0.4),
                                 Point("s", 1e9, 1024, "quest", 4, 0, 0.0)};
  // The decode curve counts decode FLOPs only: dense 10, quest 2x 5.
  in[0].flops_decode = 10;
  in[1].flops_decode = 5;
  in[2].flops_decode = 3;
  in[0].flops_prefill = in[1].flops_prefill = in[2].flops_prefill = 1000;
  in[1].phase = in[2].phase = "decode";
  in[2].samples.clear();
  const std::vector<IsoFlopsCurve> curves = BuildIsoFlopsCurves(in, {});
  ASSERT_EQ(curves.size(), 1u);  // only the decode phase has sparse points
  EXPECT_EQ(curves[0].phase, "decode");
  ASSERT_EQ(curves[0].points.size(), 2u);
  EXPECT_EQ(curves[0].points[0].method, "quest");
  EXPECT_TRUE(curves[0].points[0].on_frontier);
  EXPECT_DOUBLE_EQ(curves[0].points[0].flops, 5.0);
  EXPECT_TRUE(curves[0].points[1].on_frontier);
  FlopsOptions total;
  total.isoflops_total = true;
  EXPECT_DOUBLE_EQ(BuildIsoFlopsCurves(in, total)[0].points[0].flops, 1005.0);
}

TEST(FindCriticalLengths, InterpolatesTheCrossingInLogLength) {
  // L = 16384: small dense costs 100 and scores 0.6; the large model at the same cost
  // (C = 4) scores 0.5: advantage -0.1. L = 32768: small 0.5, large 0.7: +0.2.
  // Crossing at ln L1 + (0.1 / 0.3) ln 2 -> 16384 * 2^(1/3) = 20642.4...
  std::vector<ResultPoint> in = {
      Point("small", 1e9, 16384, "dense", 1, 100, 0.6),
      Point("large", 4e9, 16384, "dense", 1, 400, 0.8),
      Point("large", 4e9, 16384, "block_sparse", 4, 100, 0.5),
      Point("small", 1e9, 32768, "dense", 1, 100, 0.5),
      Point("large", 4e9, 32768, "dense", 1, 400, 0.8),
      Point("large", 4e9, 32768, "block_sparse", 4, 100, 0.7),
  };
  const std::vector<CriticalLength> cls = FindCriticalLengths(BuildIsoFlopsCurves(in, {}));
  ASSERT_EQ(cls.size(), 1u);
  EXPECT_EQ(cls[0].small_model, "small");
  EXPECT_EQ(cls[0].large_model, "large");
  EXPECT_EQ(cls[0].verdict, "crosses");
  ASSERT_TRUE(cls[0].critical_len.has_value());
  EXPECT_NEAR(*cls[0].critical_len, 16384.0 * std::cbrt(2.0), 1e-6);
  ASSERT_EQ(cls[0].rows.size(), 2u);
  EXPECT_NEAR(cls[0].rows[0].advantage, -0.1, 1e-12);
}

TEST(FindCriticalLengths, InterpolatesAlongFrontierAndReportsNoneInRange) {
  // The small dense model costs 200: the large frontier (100, 0.3) -> (400, 0.5) gives
  // 0.3 + 0.5 * 0.2 = 0.4 at 200 (halfway in ln FLOPs), below 0.6 at both lengths.
  std::vector<ResultPoint> in;
  for (int64_t len : {1024, 2048}) {
    in.push_back(Point("small", 1e9, len, "dense", 1, 200, 0.6));
    in.push_back(Point("large", 4e9, len, "dense", 1, 400, 0.5));
    in.push_back(Point("large", 4e9, len, "block_sparse", 4, 100, 0.3));
  }
  const std::vector<CriticalLength> cls = FindCriticalLengths(BuildIsoFlopsCurves(in, {}));
  ASSERT_EQ(cls.size(), 1u);
  EXPECT_EQ(cls[0].verdict, "none in range");
  EXPECT_FALSE(cls[0].critical_len.has_value());
  EXPECT_NEAR(cls[0].rows[0].large_score_at_equal_flops, 0.4, 1e-12);
}

TEST(FindCriticalLengths, LargeModelThatCannotGetCheapEnoughIsNotComparable) {
  std::vector<ResultPoint> in = {Point("small", 1e9, 1024, "dense", 1, 100, 0.6),
                                 Point("large", 4e9, 1024, "dense", 1, 400, 0.9),
                                 Point("large", 4e9, 1024, "block_sparse", 2, 250, 0.8)};
  const std::vector<CriticalLength> cls = FindCriticalLengths(BuildIsoFlopsCurves(in, {}));
  ASSERT_EQ(cls.size(), 1u);
  EXPECT_EQ(cls[0].verdict, "not comparable");
  EXPECT_TRUE(std::isnan(cls[0].rows[0].advantage));
}

TEST(MeanOverTasks, AveragesConfigsEveryTaskHas) {
  std::vector<ResultPoint> in = {Point("m", 1e9, 1024, "dense", 1, 100, 0.8),
                                 Point("m", 1e9, 1024, "block_sparse", 2, 60, 0.6),
                                 Point("m", 1e9, 1024, "block_sparse", 4, 40, 0.5),
                                 Point("m", 1e9, 1024, "dense", 1, 100, 0.4),
                                 Point("m", 1e9, 1024, "block_sparse", 2, 70, 0.2)};
  for (size_t i = 3; i < in.size(); ++i) in[i].task = "u";
  const std::vector<IsoFlopsCurve> mean = MeanOverTasks(BuildIsoFlopsCurves(in, {}));
  ASSERT_EQ(mean.size(), 1u);
  EXPECT_EQ(mean[0].task, kMeanOverTasks);
  // 4x exists for task t only: left out. 2x: flops (60 + 70) / 2, score (0.6 + 0.2) / 2.
  ASSERT_EQ(mean[0].points.size(), 2u);
  EXPECT_EQ(mean[0].points[0].method, "block_sparse");
  EXPECT_DOUBLE_EQ(mean[0].points[0].flops, 65.0);
  EXPECT_DOUBLE_EQ(mean[0].points[0].score, 0.4);
  EXPECT_DOUBLE_EQ(mean[0].points[1].score, 0.6);
  EXPECT_TRUE(mean[0].points[1].on_frontier);
}

TEST(PointFlops, UsesModelWhenWorkerRecordedNone) {
  ResultPoint p;
  p.shape = Qwen25_7B();
  p.seq_len = 16384;
  p.method = "vertical_slash";
  p.phase = "prefill";
  p.nominal_compression = 2.0;
  p.measured_compression = 4.0;
  // Measured compression (4) divides the 53879358095360 FLOPs of dense attention;
  // estimation 210453397504 (see flops_test).
  const FlopsBreakdown f = PointFlops(p, {});
  EXPECT_DOUBLE_EQ(f.prefill_attention, 53879358095360.0 / 4.0);
  EXPECT_DOUBLE_EQ(f.indexing, 210453397504.0);
  FlopsOptions nominal;
  nominal.prefer_measured_compression = false;
  EXPECT_DOUBLE_EQ(PointFlops(p, nominal).prefill_attention, 53879358095360.0 / 2.0);
}

}  // namespace
}  // namespace sf::analysis
