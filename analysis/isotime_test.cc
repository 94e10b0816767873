#include "analysis/isotime.h"

#include "gtest/gtest.h"

namespace sf::analysis {
namespace {

ResultPoint Timed(const std::string& model, double params, const std::string& method, double comp,
                  double flops, double seconds, double score, const std::string& device = "H100") {
  ResultPoint p;
  p.model = model;
  p.params = params;
  p.task = "t";
  p.seq_len = 1024;
  p.method = method;
  p.phase = "prefill";
  p.nominal_compression = comp;
  p.flops_prefill = flops;
  p.prefill_seconds = seconds;
  p.device = device;
  p.samples = {{0, score}, {1, score}};
  return p;
}

// A larger model's sparse run is cheaper than the smaller dense run in FLOPs but slower
// on the clock: the two frontiers disagree on the small dense model.
std::vector<ResultPoint> SlowSparseKernel() {
  std::vector<ResultPoint> in = {Timed("s", 1e9, "dense", 1, 100, 1.0, 0.5),
                                 Timed("l", 4e9, "vertical_slash", 4, 90, 2.0, 0.6),
                                 Timed("l", 4e9, "dense", 1, 400, 3.0, 0.65)};
  in[1].estimation_seconds = 0.5;
  return in;
}

TEST(TimedDevice, PicksTheDeviceWithMostTimedPoints) {
  std::vector<ResultPoint> in = SlowSparseKernel();
  in.push_back(Timed("s", 1e9, "dense", 1, 100, 0.5, 0.5, "H200"));
  EXPECT_EQ(TimedDevice(in), "H100");
  for (ResultPoint& p : in) p.device.clear();
  EXPECT_EQ(TimedDevice(in), "");
}

TEST(IsoTimeCurves, UseMeasuredSecondsOfOneDeviceAndSkipUntimedPoints) {
  std::vector<ResultPoint> in = SlowSparseKernel();
  in.push_back(Timed("s", 1e9, "vertical_slash", 2, 60, 0.1, 0.45, "H200"));  // other device
  in.push_back(Timed("s", 1e9, "vertical_slash", 4, 40, 0.0, 0.40));          // not timed
  FlopsOptions time;
  time.axis = CostAxis::kSeconds;
  time.device = "H100";
  const std::vector<IsoFlopsCurve> curves = BuildIsoFlopsCurves(in, time);
  ASSERT_EQ(curves.size(), 1u);
  ASSERT_EQ(curves[0].points.size(), 3u);
  EXPECT_EQ(curves[0].points[0].model, "s");
  EXPECT_DOUBLE_EQ(curves[0].points[0].flops, 1.0);  // seconds on this axis
  for (const IsoFlopsPoint& p : curves[0].points) EXPECT_TRUE(p.on_frontier) << p.model;
}

TEST(MeasureSpeedups, MeasuredBesideFlopsSpeedupAgainstTheSameModelsDense) {
  FlopsOptions time;
  time.device = "H100";
  const std::vector<SpeedupRow> rows = MeasureSpeedups(SlowSparseKernel(), time);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].model, "l");
  EXPECT_EQ(rows[0].method, "vertical_slash");
  EXPECT_EQ(rows[0].tasks, 1);
  EXPECT_DOUBLE_EQ(rows[0].flops_speedup, 400.0 / 90.0);
  EXPECT_DOUBLE_EQ(rows[0].time_speedup, 1.5);
  EXPECT_DOUBLE_EQ(rows[0].estimation_share, 0.25);
  time.device = "H200";  // no point timed there
  EXPECT_TRUE(MeasureSpeedups(SlowSparseKernel(), time).empty());
}

TEST(CompareFrontiers, NamesTheConfigurationsOnOneFrontierOnly) {
  const std::vector<ResultPoint> in = SlowSparseKernel();
  const std::vector<IsoFlopsCurve> flops = BuildIsoFlopsCurves(in, {});
  FlopsOptions time;
  time.axis = CostAxis::kSeconds;
  time.device = "H100";
  const std::vector<IsoFlopsCurve> seconds = BuildIsoFlopsCurves(in, time);
  const std::vector<FrontierDisagreement> d = CompareFrontiers(flops, seconds);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].phase, "prefill");
  EXPECT_EQ(d[0].seq_len, 1024);
  EXPECT_TRUE(d[0].flops_only.empty());
  ASSERT_EQ(d[0].time_only.size(), 1u);
  EXPECT_EQ(d[0].time_only[0], "s / dense");
  // The same curves agree with themselves.
  EXPECT_TRUE(CompareFrontiers(flops, flops).empty());
}

}  // namespace
}  // namespace sf::analysis
