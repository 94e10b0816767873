// Iso-time analysis: does sparsity translate into wall-clock gains? The isoFLOPS
// construction (isoflops.h) on measured seconds per sample instead of FLOPs, the measured
// speed-up of each sparse configuration against its model's dense run beside the speed-up
// its FLOPs promise, and where the two frontiers disagree. Times compare only within one
// device, so the analysis uses the points of one device (TimedDevice).
#ifndef SF_ANALYSIS_ISOTIME_H_
#define SF_ANALYSIS_ISOTIME_H_

#include <cstdint>
#include <string>
#include <vector>

#include "analysis/isoflops.h"
#include "analysis/result_point.h"

namespace sf::analysis {

// The device with the most timed points with samples ("" when no point was timed); ties go
// to the name that sorts first.
std::string TimedDevice(const std::vector<ResultPoint>& points);

// One sparse configuration against its model's dense run on the same device, averaged
// over the tasks both have.
struct SpeedupRow {
  std::string model;
  std::string phase;
  std::string method;
  double nominal_compression = 1.0;
  int64_t seq_len = 0;
  int tasks = 0;
  double flops_speedup = 0.0;     // dense phase FLOPs / sparse phase FLOPs (with indexing)
  double time_speedup = 0.0;      // dense phase seconds / sparse phase seconds (measured)
  double estimation_share = 0.0;  // the sparse run's estimation seconds / its phase seconds
};

// Rows sorted by (model, phase, method, length, compression). Only points with samples
// timed on `options.device`; `options.axis` is ignored (both axes are computed).
std::vector<SpeedupRow> MeasureSpeedups(const std::vector<ResultPoint>& points,
                                        const FlopsOptions& options);

// A panel (phase, task, length) whose isoFLOPS and iso-time frontiers name different
// configurations ("model / method / C", dense as "model / dense"), over the configurations
// both curves hold.
struct FrontierDisagreement {
  std::string phase;
  std::string task;
  int64_t seq_len = 0;
  std::vector<std::string> flops_only;  // on the FLOPs frontier, not on the time frontier
  std::vector<std::string> time_only;   // on the time frontier, not on the FLOPs frontier
};

// Panels present in both lists (matched by phase, task, length) whose frontiers differ.
std::vector<FrontierDisagreement> CompareFrontiers(const std::vector<IsoFlopsCurve>& flops,
                                                   const std::vector<IsoFlopsCurve>& time);

}  // namespace sf::analysis

#endif  // SF_ANALYSIS_ISOTIME_H_
