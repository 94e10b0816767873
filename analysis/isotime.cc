#include "analysis/isotime.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sf::analysis {
namespace {

std::string ConfigName(const IsoFlopsPoint& p) {
  if (p.method == BaselineMethod().name) return absl::StrCat(p.model, " / ", p.method);
  return absl::StrFormat("%s / %s / %g", p.model, p.method, p.nominal_compression);
}

double PhaseFlops(const ResultPoint& p, const std::string& phase, const FlopsOptions& options) {
  FlopsOptions flops = options;
  flops.axis = CostAxis::kFlops;
  return IsoFlopsCost(p, phase, flops);
}

double PhaseSeconds(const ResultPoint& p, const std::string& phase) {
  return phase == "decode" ? p.decode_seconds : p.prefill_seconds;
}

}  // namespace

std::string TimedDevice(const std::vector<ResultPoint>& points) {
  std::map<std::string, int> count;
  for (const ResultPoint& p : points) {
    if (!p.samples.empty() && !p.device.empty()) ++count[p.device];
  }
  std::string best;
  int most = 0;
  for (const auto& [device, n] : count) {
    if (n > most) {
      best = device;
      most = n;
    }
  }
  return best;
}

std::vector<SpeedupRow> MeasureSpeedups(const std::vector<ResultPoint>& points,
                                        const FlopsOptions& options) {
  // Dense runs by (model, task, length).
  std::map<std::tuple<std::string, std::string, int64_t>, const ResultPoint*> dense;
  for (const ResultPoint& p : points) {
    if (p.is_dense() && !p.samples.empty() && p.device == options.device) {
      dense[{p.model, p.task, p.seq_len}] = &p;
    }
  }
  struct Sum {
    SpeedupRow row;
    double flops = 0, time = 0, share = 0;
  };
  std::map<std::tuple<std::string, std::string, std::string, int64_t, double>, Sum> sums;
  for (const ResultPoint& p : points) {
    if (p.is_dense() || p.samples.empty() || p.device != options.device) continue;
    auto it = dense.find({p.model, p.task, p.seq_len});
    if (it == dense.end()) continue;
    const ResultPoint& d = *it->second;
    const double sparse_s = PhaseSeconds(p, p.phase), dense_s = PhaseSeconds(d, p.phase);
    const double sparse_f = PhaseFlops(p, p.phase, options);
    const double dense_f = PhaseFlops(d, p.phase, options);
    if (!(sparse_s > 0) || !(dense_s > 0) || !(sparse_f > 0) || !(dense_f > 0)) continue;
    Sum& s = sums[{p.model, p.phase, p.method, p.seq_len, p.nominal_compression}];
    s.row.model = p.model;
    s.row.phase = p.phase;
    s.row.method = p.method;
    s.row.nominal_compression = p.nominal_compression;
    s.row.seq_len = p.seq_len;
    ++s.row.tasks;
    s.flops += dense_f / sparse_f;
    s.time += dense_s / sparse_s;
    s.share += p.estimation_seconds / sparse_s;
  }
  std::vector<SpeedupRow> rows;
  for (auto& [key, s] : sums) {
    const double n = s.row.tasks;
    s.row.flops_speedup = s.flops / n;
    s.row.time_speedup = s.time / n;
    s.row.estimation_share = s.share / n;
    rows.push_back(s.row);
  }
  return rows;
}

std::vector<FrontierDisagreement> CompareFrontiers(const std::vector<IsoFlopsCurve>& flops,
                                                   const std::vector<IsoFlopsCurve>& time) {
  std::map<std::tuple<std::string, std::string, int64_t>, const IsoFlopsCurve*> timed;
  for (const IsoFlopsCurve& c : time) timed[{c.phase, c.task, c.seq_len}] = &c;
  std::vector<FrontierDisagreement> out;
  for (const IsoFlopsCurve& c : flops) {
    auto it = timed.find({c.phase, c.task, c.seq_len});
    if (it == timed.end()) continue;
    std::set<std::string> in_time, time_frontier;
    for (const IsoFlopsPoint& p : it->second->points) {
      in_time.insert(ConfigName(p));
      if (p.on_frontier) time_frontier.insert(ConfigName(p));
    }
    // The FLOPs frontier over the configurations both curves hold.
    std::vector<IsoFlopsPoint> shared;
    for (const IsoFlopsPoint& p : c.points) {
      if (in_time.contains(ConfigName(p))) shared.push_back(p);
    }
    MarkFrontier(shared);
    std::set<std::string> flops_frontier;
    for (const IsoFlopsPoint& p : shared) {
      if (p.on_frontier) flops_frontier.insert(ConfigName(p));
    }
    FrontierDisagreement d;
    d.phase = c.phase;
    d.task = c.task;
    d.seq_len = c.seq_len;
    std::set_difference(flops_frontier.begin(), flops_frontier.end(), time_frontier.begin(),
                        time_frontier.end(), std::back_inserter(d.flops_only));
    std::set_difference(time_frontier.begin(), time_frontier.end(), flops_frontier.begin(),
                        flops_frontier.end(), std::back_inserter(d.time_only));
    if (!d.flops_only.empty() || !d.time_only.empty()) out.push_back(std::move(d));
  }
  return out;
}

}  // namespace sf::analysis
