#include "analysis/isoflops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include "methods/registry.h"

namespace sf::analysis {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Score of the model's frontier at `budget` FLOPs (see FindCriticalLengths).
double FrontierScoreAt(const std::vector<IsoFlopsPoint>& frontier, double budget) {
  if (frontier.empty() || budget < frontier.front().flops) return kNaN;
  if (budget >= frontier.back().flops) return frontier.back().score;
  for (size_t i = 0; i + 1 < frontier.size(); ++i) {
    const IsoFlopsPoint& a = frontier[i];
    const IsoFlopsPoint& b = frontier[i + 1];
    if (budget >= a.flops && budget <= b.flops) {
      const double span = std::log(b.flops) - std::log(a.flops);
      if (span <= 0) return b.score;
      const double f = (std::log(budget) - std::log(a.flops)) / span;
      return a.score + f * (b.score - a.score);
    }
  }
  return frontier.back().score;
}
}  // namespace

FlopsBreakdown PointFlops(const ResultPoint& p, const FlopsOptions& options, bool* indexing_known) {
  if (indexing_known != nullptr) *indexing_known = true;
  if (p.flops_prefill > 0 || p.flops_decode > 0 || p.flops_indexing > 0) {
    FlopsBreakdown f;
    f.prefill_linear = p.flops_prefill;
    f.decode_linear = p.flops_decode;
    f.indexing = p.flops_indexing;
    return f;
  }
  const double c = p.Compression(options.prefer_measured_compression);
  const bool decode = !p.is_dense() && p.phase == "decode";
  absl::StatusOr<double> est =
      EstimationFlops(p.method, p.shape, p.seq_len, p.decode_tokens, options.estimation);
  if (!est.ok() && indexing_known != nullptr) *indexing_known = false;
  // The cost model the worker records with, so computed and recorded points agree.
  return model::CostModel(p.shape).Nominal(p.seq_len, p.decode_tokens, decode ? 1.0 : c,
                                           decode ? c : 1.0, est.ok() ? *est : 0.0);
}

double IsoFlopsCost(const ResultPoint& p, const std::string& phase, const FlopsOptions& options) {
  if (options.axis == CostAxis::kSeconds) {
    if (options.isoflops_total) return p.prefill_seconds + p.decode_seconds;
    return phase == "decode" ? p.decode_seconds : p.prefill_seconds;
  }
  const FlopsBreakdown f = PointFlops(p, options);
  if (options.isoflops_total) return f.Total();
  return (phase == "decode" ? f.Decode() : f.Prefill()) + f.indexing;
}

void MarkFrontier(std::vector<IsoFlopsPoint>& points) {
  double best = -std::numeric_limits<double>::infinity();
  for (IsoFlopsPoint& p : points) {
    p.on_frontier = p.score > best;
    if (p.on_frontier) best = p.score;
  }
}

std::vector<IsoFlopsCurve> BuildIsoFlopsCurves(const std::vector<ResultPoint>& input,
                                               const FlopsOptions& options) {
  std::map<std::tuple<std::string, std::string, int64_t>, IsoFlopsCurve> curves;
  std::set<std::string> sparse_phases;
  for (const ResultPoint& p : input) {
    if (!p.is_dense()) sparse_phases.insert(p.phase);
  }
  for (const ResultPoint& p : input) {
    if (p.samples.empty()) continue;
    if (options.axis == CostAxis::kSeconds && p.device != options.device) continue;
    IsoFlopsPoint q;
    q.model = p.model;
    q.params = p.Params();
    q.method = p.method;
    q.compression = p.Compression(options.prefer_measured_compression);
    q.nominal_compression = p.is_dense() ? 1.0 : p.nominal_compression;
    q.score = p.MeanScore();
    for (const std::string& phase : sparse_phases) {
      if (!p.is_dense() && p.phase != phase) continue;
      q.flops = IsoFlopsCost(p, phase, options);
      if (options.axis == CostAxis::kSeconds && !(q.flops > 0)) continue;
      IsoFlopsCurve& c = curves[{phase, p.task, p.seq_len}];
      c.phase = phase;
      c.task = p.task;
      c.seq_len = p.seq_len;
      c.points.push_back(q);
    }
  }
  std::vector<IsoFlopsCurve> out;
  for (auto& [key, c] : curves) {
    std::stable_sort(c.points.begin(), c.points.end(), [](const auto& a, const auto& b) {
      return a.flops != b.flops ? a.flops < b.flops : a.score > b.score;
    });
    MarkFrontier(c.points);
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<IsoFlopsCurve> MeanOverTasks(const std::vector<IsoFlopsCurve>& curves) {
  using Config = std::tuple<std::string, std::string, double>;  // model, method, nominal C
  struct Sum {
    IsoFlopsPoint point;
    double score = 0.0, flops = 0.0;
    int tasks = 0;
  };
  std::map<std::pair<std::string, int64_t>, std::map<Config, Sum>> sums;
  std::map<std::pair<std::string, int64_t>, int> task_count;
  for (const IsoFlopsCurve& c : curves) {
    if (c.task == kMeanOverTasks) continue;
    const auto key = std::make_pair(c.phase, c.seq_len);
    ++task_count[key];
    for (const IsoFlopsPoint& p : c.points) {
      Sum& s = sums[key][{p.model, p.method, p.nominal_compression}];
      s.point = p;
      s.score += p.score;
      s.flops += p.flops;
      ++s.tasks;
    }
  }
  std::vector<IsoFlopsCurve> out;
  for (auto& [key, configs] : sums) {
    const int tasks = task_count[key];
    if (tasks < 2) continue;
    IsoFlopsCurve c;
    c.phase = key.first;
    c.task = kMeanOverTasks;
    c.seq_len = key.second;
    for (auto& [config, s] : configs) {
      if (s.tasks != tasks) continue;  // a config some task lacks would bias the mean
      IsoFlopsPoint p = s.point;
      p.score = s.score / tasks;
      p.flops = s.flops / tasks;
      c.points.push_back(p);
    }
    std::stable_sort(c.points.begin(), c.points.end(), [](const auto& a, const auto& b) {
      return a.flops != b.flops ? a.flops < b.flops : a.score > b.score;
    });
    MarkFrontier(c.points);
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<CriticalLength> FindCriticalLengths(const std::vector<IsoFlopsCurve>& curves) {
  // (phase, task) -> length -> model -> points of that model
  std::map<std::pair<std::string, std::string>,
           std::map<int64_t, std::map<std::string, std::vector<IsoFlopsPoint>>>>
      grouped;
  std::map<std::string, double> params;
  for (const IsoFlopsCurve& c : curves) {
    for (const IsoFlopsPoint& p : c.points) {
      grouped[{c.phase, c.task}][c.seq_len][p.model].push_back(p);
      params[p.model] = p.params;
    }
  }
  std::vector<std::string> models;
  for (const auto& [m, n] : params) models.push_back(m);
  std::sort(models.begin(), models.end(),
            [&](const std::string& a, const std::string& b) { return params[a] < params[b]; });
  std::vector<CriticalLength> out;
  for (const auto& [key, by_len] : grouped) {
    for (size_t i = 0; i < models.size(); ++i) {
      for (size_t j = i + 1; j < models.size(); ++j) {
        CriticalLength cl;
        cl.phase = key.first;
        cl.task = key.second;
        cl.small_model = models[i];
        cl.large_model = models[j];
        for (const auto& [len, by_model] : by_len) {
          auto small = by_model.find(models[i]);
          auto large = by_model.find(models[j]);
          if (small == by_model.end() || large == by_model.end()) continue;
          const IsoFlopsPoint* dense = nullptr;
          for (const IsoFlopsPoint& p : small->second) {
            if (p.method == BaselineMethod().name) dense = &p;
          }
          if (dense == nullptr) continue;
          std::vector<IsoFlopsPoint> frontier = large->second;  // already sorted
          MarkFrontier(frontier);
          std::erase_if(frontier, [](const IsoFlopsPoint& p) { return !p.on_frontier; });
          CriticalLengthRow row;
          row.seq_len = len;
          row.small_dense_flops = dense->flops;
          row.small_dense_score = dense->score;
          row.large_score_at_equal_flops = FrontierScoreAt(frontier, dense->flops);
          row.advantage = row.large_score_at_equal_flops - row.small_dense_score;
          cl.rows.push_back(row);
        }
        std::vector<const CriticalLengthRow*> known;
        for (const CriticalLengthRow& r : cl.rows) {
          if (!std::isnan(r.advantage)) known.push_back(&r);
        }
        if (known.empty()) {
          cl.verdict = "not comparable";
        } else if (known.front()->advantage > 0) {
          cl.verdict = "ahead at every comparable length";
          for (const CriticalLengthRow* r : known) {
            if (r->advantage <= 0)
              cl.verdict = "ahead at the shortest comparable length, not at all";
          }
        } else {
          cl.verdict = "none in range";
          for (size_t k = 0; k + 1 < known.size(); ++k) {
            const double d1 = known[k]->advantage, d2 = known[k + 1]->advantage;
            if (d1 <= 0 && d2 > 0) {
              const double l1 = std::log(static_cast<double>(known[k]->seq_len));
              const double l2 = std::log(static_cast<double>(known[k + 1]->seq_len));
              cl.critical_len = std::exp(l1 + (0.0 - d1) / (d2 - d1) * (l2 - l1));
              cl.verdict = "crosses";
              break;
            }
          }
        }
        if (!cl.rows.empty()) out.push_back(std::move(cl));
      }
    }
  }
  return out;
}

}  // namespace sf::analysis
