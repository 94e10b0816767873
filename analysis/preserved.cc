#include "analysis/preserved.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <tuple>
#include <unordered_map>

#include "absl/strings/str_cat.h"

namespace sf::analysis {

absl::StatusOr<std::vector<PreservedCompression>> ComputePreservedCompression(
    const std::vector<ResultPoint>& points, const PreservedOptions& options) {
  if (!(options.alpha > 0.0 && options.alpha < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("alpha must lie in (0, 1), got ", options.alpha));
  }
  using Key = std::tuple<std::string, std::string, int64_t>;
  std::map<Key, const ResultPoint*> dense;
  for (const ResultPoint& p : points) {
    if (p.is_dense()) dense[{p.model, p.task, p.seq_len}] = &p;
  }
  // The phase is part of the key: a method such as streaming can run in either phase,
  // and its prefill and decode results are different experiments.
  std::map<std::tuple<std::string, std::string, int64_t, std::string, std::string>,
           std::vector<const ResultPoint*>>
      groups;
  for (const ResultPoint& p : points) {
    if (!p.is_dense()) groups[{p.model, p.task, p.seq_len, p.method, p.phase}].push_back(&p);
  }
  std::vector<PreservedCompression> out;
  for (auto& [key, members] : groups) {
    PreservedCompression pc;
    std::tie(pc.model, pc.task, pc.seq_len, pc.method, pc.phase) = key;
    std::sort(members.begin(), members.end(), [](const ResultPoint* a, const ResultPoint* b) {
      return a->nominal_compression < b->nominal_compression;
    });
    auto base = dense.find({pc.model, pc.task, pc.seq_len});
    std::unordered_map<int64_t, double> base_scores;
    if (base != dense.end()) {
      for (const SampleScore& s : base->second->samples) base_scores[s.index] = s.score;
    }
    bool any_pairs = false, dense_nonzero = false;
    for (const ResultPoint* p : members) {
      CompressionTest t;
      t.compression = p->nominal_compression;
      std::vector<double> sparse_v, dense_v;
      for (const SampleScore& s : p->samples) {
        auto it = base_scores.find(s.index);
        if (it == base_scores.end()) continue;
        sparse_v.push_back(s.score);
        dense_v.push_back(it->second);
        any_pairs = true;
        dense_nonzero = dense_nonzero || it->second != 0.0;
      }
      t.n_pairs = static_cast<int>(sparse_v.size());
      t.p_value = std::numeric_limits<double>::quiet_NaN();
      if (!sparse_v.empty()) {
        double sum = 0.0;
        for (size_t i = 0; i < sparse_v.size(); ++i) sum += sparse_v[i] - dense_v[i];
        t.mean_difference = sum / static_cast<double>(sparse_v.size());
      }
      absl::StatusOr<PairedTestResult> r = PairedOneSidedTest(sparse_v, dense_v, options.test);
      if (r.ok()) {
        t.p_value = r->p_value;
        t.significantly_worse = r->p_value < options.alpha;
      }
      pc.tests.push_back(t);
    }
    pc.dense_at_zero = any_pairs && !dense_nonzero;
    bool any_tested = false, failed = false;
    pc.preserved = 1.0;
    for (const CompressionTest& t : pc.tests) {
      if (std::isnan(t.p_value)) continue;
      any_tested = true;
      if (t.significantly_worse) {
        failed = true;
      } else if (failed) {
        pc.non_monotone = true;
      } else {
        pc.preserved = std::max(pc.preserved, t.compression);
      }
    }
    if (!any_tested || pc.dense_at_zero) pc.preserved = std::numeric_limits<double>::quiet_NaN();
    out.push_back(std::move(pc));
  }
  return out;
}

bool IsCensored(const PreservedCompression& pc) {
  return !pc.tests.empty() && !std::isnan(pc.preserved) &&
         pc.preserved == pc.tests.back().compression;
}

}  // namespace sf::analysis
