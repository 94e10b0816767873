// Internal to kernels/cpu: statistics a method's selection needs that do not depend on
// its budget (the last queries' line mass, XAttention's block mass, SnapKV's
// importance), computed once per fidelity table and shared by its rows and by the
// bisection steps of their calibration. Not thread-safe: one table fills it in order.
#ifndef SF_KERNELS_CPU_SHARED_STATS_H_
#define SF_KERNELS_CPU_SHARED_STATS_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/selection_internal.h"

namespace sf::kernels {

class SharedStats {
 public:
  // The statistics are of `in`'s rows; `in` must outlive this.
  explicit SharedStats(const AttentionInput& in) : in_(in) {}

  const AttentionInput& input() const { return in_; }

  // Computes the line mass of every last_q in one pass over the softmax rows.
  void PrefetchLines(std::vector<int64_t> last_qs) {
    std::sort(last_qs.begin(), last_qs.end());
    last_qs.erase(std::unique(last_qs.begin(), last_qs.end()), last_qs.end());
    for (internal::LineMass& m : internal::ComputeLineMasses(in_, last_qs)) {
      lines_.emplace(m.last_q, std::move(m));
    }
  }
  // ComputeLineMass(input(), last_q), computed once.
  const internal::LineMass& Lines(int64_t last_q) {
    auto it = lines_.find(last_q);
    if (it == lines_.end())
      it = lines_.emplace(last_q, internal::ComputeLineMass(in_, last_q)).first;
    return it->second;
  }

  // A method's own statistic under `key` (the method's name first, then what it
  // depends on): the stored one, else compute() stored.
  template <typename T>
  const T& Get(const std::string& key, const std::function<T()>& compute) {
    auto it = other_.find(key);
    if (it == other_.end()) it = other_.emplace(key, std::make_shared<T>(compute())).first;
    return *static_cast<const T*>(it->second.get());
  }
  // Stores `value` under `key` unless present (statistics computed together).
  template <typename T>
  void Put(const std::string& key, T value) {
    other_.emplace(key, std::make_shared<T>(std::move(value)));
  }

 private:
  const AttentionInput& in_;
  std::map<int64_t, internal::LineMass> lines_;
  std::map<std::string, std::shared_ptr<void>> other_;
};

}  // namespace sf::kernels

#endif  // SF_KERNELS_CPU_SHARED_STATS_H_
