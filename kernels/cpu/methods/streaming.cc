// streaming on the CPU: sinks plus a local window, per row in prefill and per step in
// decode; after prefill the cache keeps the prompt's sinks and last window
// (docs/methods.md).
#include "kernels/cpu/methods/streaming.h"

#include "common/status.h"
#include "kernels/cpu/cpu_method.h"
#include "kernels/cpu/methods/method_list.h"
#include "kernels/cpu/selection_internal.h"
#include "methods/registry.h"

namespace sf::kernels {
namespace {

class Streaming : public CpuMethod {
 public:
  Streaming(const MethodInfo& info, int64_t sink, int64_t window)
      : CpuMethod(info), sink_(sink), window_(window) {}

  absl::StatusOr<SelectionResult> SelectPrefill(const AttentionInput& in) const override {
    if (window_ > in.k.len) {
      return internal::TooLarge("streaming", "window", window_, in.k.len, "the sequence");
    }
    if (sink_ > in.k.len) {
      return internal::TooLarge("streaming", "sink", sink_, in.k.len, "the sequence");
    }
    std::vector<internal::HeadPattern> heads(in.q.heads);
    for (internal::HeadPattern& h : heads) {
      h.sink = sink_;
      h.window = window_;
    }
    return internal::PatternResult(std::move(heads), in.q_offset, 0.0);
  }

  absl::StatusOr<KeptTokens> CompressKv(const TensorView&, const TensorView& keys) const override {
    KeptTokens kept;
    kept.per_kv_head.resize(keys.heads);
    for (auto& k : kept.per_kv_head) {
      for (int64_t j = 0; j < keys.len; ++j) {
        if (j < sink_ || j >= keys.len - window_) k.push_back(j);
      }
    }
    return kept;
  }

 private:
  int64_t sink_;
  int64_t window_;  // includes the query's own token
};

absl::StatusOr<std::shared_ptr<const CpuMethod>> Bind(const ParamReader& r) {
  SF_ASSIGN_OR_RETURN(const StreamingParams p, StreamingParamsFrom(r));
  return std::make_shared<Streaming>(r.method(), p.sink, p.window);
}

}  // namespace

absl::StatusOr<StreamingParams> StreamingParamsFrom(const ParamReader& r) {
  StreamingParams p;
  SF_ASSIGN_OR_RETURN(p.sink, r.Int("sink"));
  SF_ASSIGN_OR_RETURN(p.window, r.Int("window"));
  return p;
}

absl::StatusOr<StreamingParams> StreamingParamsFrom(const ParamMap& params) {
  SF_ASSIGN_OR_RETURN(const MethodInfo* method, LookUpMethod("streaming"));
  const ParamReader reader(*method, params);
  SF_RETURN_IF_ERROR(reader.CheckNamesKnown());
  return StreamingParamsFrom(reader);
}

MethodParams StreamingMethodParams(const StreamingParams& p) {
  const MethodInfo* method = FindMethod("streaming");
  return MethodParams(std::make_shared<Streaming>(*method, p.sink, p.window));
}

CpuMethodEntry StreamingCpu() { return {.name = "streaming", .bind = Bind}; }

}  // namespace sf::kernels
