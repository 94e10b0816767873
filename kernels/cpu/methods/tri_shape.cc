// tri_shape on the CPU: the row at position i attends to keys [0, sink) and
// [i - window + 1, i]; rows among the last `last_q` positions of the sequence attend to
// every key [0, i] (docs/methods.md).
#include <algorithm>

#include "common/status.h"
#include "kernels/cpu/cpu_method.h"
#include "kernels/cpu/methods/method_list.h"
#include "kernels/cpu/selection_internal.h"

namespace sf::kernels {
namespace {

class TriShapeSelection : public Selection {
 public:
  // `dense_from`: the first position whose row is dense.
  TriShapeSelection(int64_t sink, int64_t window, int64_t dense_from, int64_t q_offset)
      : sink_(sink), window_(window), dense_from_(dense_from), q_offset_(q_offset) {}

  void Row(int64_t, int64_t i, std::vector<KeyRange>* out) const override {
    const int64_t pos = q_offset_ + i;
    out->clear();
    if (pos >= dense_from_) {
      out->push_back({0, pos + 1});
      return;
    }
    const int64_t local_begin = std::max<int64_t>(pos - window_ + 1, 0);
    const int64_t sink_end = std::min(sink_, pos + 1);
    if (sink_end >= local_begin) {  // the sinks touch the window: one range
      out->push_back({0, pos + 1});
      return;
    }
    if (sink_end > 0) out->push_back({0, sink_end});
    out->push_back({local_begin, pos + 1});
  }

 private:
  int64_t sink_;
  int64_t window_;
  int64_t dense_from_;
  int64_t q_offset_;
};

class TriShape : public CpuMethod {
 public:
  TriShape(const MethodInfo& info, int64_t sink, int64_t last_q, int64_t window)
      : CpuMethod(info), sink_(sink), last_q_(last_q), window_(window) {}

  absl::StatusOr<SelectionResult> SelectPrefill(const AttentionInput& in) const override {
    if (window_ > in.k.len) {
      return internal::TooLarge("tri_shape", "window", window_, in.k.len, "the sequence");
    }
    if (sink_ > in.k.len) {
      return internal::TooLarge("tri_shape", "sink", sink_, in.k.len, "the sequence");
    }
    // The last `last_q` positions of the sequence (the prompt's end) are dense.
    const int64_t dense_from = std::max<int64_t>(in.k.len - last_q_, 0);
    return SelectionResult{
        std::make_shared<TriShapeSelection>(sink_, window_, dense_from, in.q_offset), 0.0};
  }

 private:
  int64_t sink_;
  int64_t last_q_;
  int64_t window_;  // includes the query's own token
};

absl::StatusOr<std::shared_ptr<const CpuMethod>> Bind(const ParamReader& r) {
  SF_ASSIGN_OR_RETURN(const int64_t sink, r.Int("sink"));
  SF_ASSIGN_OR_RETURN(const int64_t last_q, r.Int("last_q"));
  SF_ASSIGN_OR_RETURN(const int64_t window, r.Int("window"));
  return std::make_shared<TriShape>(r.method(), sink, last_q, window);
}

}  // namespace

CpuMethodEntry TriShapeCpu() { return {.name = "tri_shape", .bind = Bind}; }

}  // namespace sf::kernels
