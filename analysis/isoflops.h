// isoFLOPS analysis: score against FLOPs per (phase, task, length) for every
// (model, method, compression), the Pareto frontier, and the critical length past
// which a larger sparse model beats a smaller dense one at equal FLOPs.
#ifndef SF_ANALYSIS_ISOFLOPS_H_
#define SF_ANALYSIS_ISOFLOPS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "analysis/flops.h"
#include "analysis/result_point.h"

namespace sf::analysis {

// What the x axis of a frontier measures: FLOPs per sample (the isoFLOPS analysis), or the
// measured seconds per sample (the iso-time analysis, analysis/isotime.h).
enum class CostAxis { kFlops, kSeconds };

struct FlopsOptions {
  CostAxis axis = CostAxis::kFlops;
  // With kSeconds: only points timed on this device (ResultPoint::device) take part.
  std::string device;
  bool prefer_measured_compression = true;
  // isoFLOPS x axis: false (default, as the study plots each phase) counts only the
  // curve's phase (its linear + attention FLOPs, plus the indexing of that phase's
  // method); true counts prefill + decode + indexing.
  bool isoflops_total = false;
  EstimationSettings estimation;
};

// FLOPs of one sample of `p`: the worker's recorded figures when any is non-zero,
// else the cost model the worker records with (model::CostModel::Nominal over seq_len
// prompt tokens and decode_tokens output tokens; prefill methods compress prefill
// attention, decode methods decode attention). `*indexing_known` (optional) is false when the
// method has no estimation formula and indexing was taken as 0.
FlopsBreakdown PointFlops(const ResultPoint& p, const FlopsOptions& options,
                          bool* indexing_known = nullptr);

struct IsoFlopsPoint {
  std::string model;
  double params = 0.0;  // N
  std::string method;
  double compression = 1.0;          // measured when preferred and recorded
  double nominal_compression = 1.0;  // the grid's value (1 for dense)
  double flops = 0.0;  // cost per sample on the axis (FlopsOptions::axis): FLOPs or seconds,
                       // of the curve's phase or the total
  double score = 0.0;
  bool on_frontier = false;
};

// The cost of `p` on the x axis of `phase` (see FlopsOptions::axis and isoflops_total):
// FLOPs including the phase's indexing, or measured seconds (estimation is part of its
// phase's time); 0 when `p` was not timed.
double IsoFlopsCost(const ResultPoint& p, const std::string& phase, const FlopsOptions& options);

// One (phase, task, length) panel; dense points appear in both phases.
struct IsoFlopsCurve {
  std::string phase;
  std::string task;
  int64_t seq_len = 0;
  std::vector<IsoFlopsPoint> points;  // sorted by FLOPs, then score descending
};

// Marks the Pareto frontier: a point is on it when its score is strictly above every
// cheaper (or equally cheap, listed earlier) point's. REQUIRES: points sorted as above.
void MarkFrontier(std::vector<IsoFlopsPoint>& points);

// Groups `input` into curves (phases: "prefill", "decode"; a phase without sparse
// points gets no curve). Points without samples are left out (missing, not zero); on the
// seconds axis so are points not timed on options.device.
std::vector<IsoFlopsCurve> BuildIsoFlopsCurves(const std::vector<ResultPoint>& input,
                                               const FlopsOptions& options);

// The task name of the curves MeanOverTasks() makes.
inline constexpr char kMeanOverTasks[] = "mean over tasks";

// Per (phase, length), the mean score and FLOPs over tasks of every (model, method,
// nominal compression) that every task of that (phase, length) has: the curves behind
// a task-averaged frontier and critical length. Empty with fewer than two tasks.
std::vector<IsoFlopsCurve> MeanOverTasks(const std::vector<IsoFlopsCurve>& curves);

// The larger model's best score at the smaller dense model's FLOPs, length by length.
struct CriticalLengthRow {
  int64_t seq_len = 0;
  double small_dense_flops = 0.0;
  double small_dense_score = 0.0;
  double large_score_at_equal_flops = 0.0;  // NaN: the large model cannot get that cheap
  double advantage = 0.0;                   // large - small; NaN when unknown
};

struct CriticalLength {
  std::string phase;
  std::string task;
  std::string small_model;
  std::string large_model;
  std::vector<CriticalLengthRow> rows;
  // Interpolated (in ln L) length where the advantage first turns positive.
  std::optional<double> critical_len;
  // "crosses"; "ahead at every comparable length" (any crossing lies at or below the
  // shortest length where the larger model can be as cheap); "ahead at the shortest
  // comparable length, not at all"; "none in range"; or "not comparable" (no length
  // where both sides are known).
  std::string verdict;
};

// For every (phase, task) and every pair of models (smaller N, larger N), the
// larger model's score at the smaller dense model's FLOPs is read off the larger
// model's Pareto frontier (linear in ln FLOPs between frontier points; the best
// frontier score when the budget exceeds its most expensive point; NaN when its
// cheapest point costs more).
std::vector<CriticalLength> FindCriticalLengths(const std::vector<IsoFlopsCurve>& curves);

}  // namespace sf::analysis

#endif  // SF_ANALYSIS_ISOFLOPS_H_
