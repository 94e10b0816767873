// For tests: a method's typed parameters (kernels/cpu/methods/<name>.h) written back as
// the ParamMap they come from, and the CPU reference called with them through
// ParseMethodParams, so a test can drive a CUDA selection and the reference with one
// struct.
#ifndef SF_KERNELS_CPU_METHODS_TESTING_TYPED_PARAMS_H_
#define SF_KERNELS_CPU_METHODS_TESTING_TYPED_PARAMS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/job.h"
#include "common/status.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/method_params.h"
#include "kernels/cpu/methods/block_sparse.h"
#include "kernels/cpu/methods/flexprefill.h"
#include "kernels/cpu/methods/snapkv.h"
#include "kernels/cpu/methods/streaming.h"
#include "kernels/cpu/methods/vertical_slash.h"
#include "kernels/cpu/methods/xattention.h"

namespace sf::kernels::testing {

// A map already (methods without typed parameters, such as dense).
inline ParamMap ToParamMap(const ParamMap& p) { return p; }

inline ParamMap ToParamMap(const VerticalSlashParams& p) {
  return {{"last_q", p.last_q},
          {"sink", p.sink},
          {"local", p.local},
          {"verticals", p.verticals},
          {"slashes", p.slashes}};
}

inline ParamMap ToParamMap(const FlexPrefillParams& p) {
  return {
      {"gamma", p.gamma},           {"tau", p.tau},
      {"min_budget", p.min_budget}, {"last_q", p.last_q},
      {"block", p.block},           {"variant", std::string(p.original ? "original" : "study")}};
}

inline ParamMap ToParamMap(const BlockSparseParams& p) {
  return {{"block", p.block}, {"block_budget", p.block_budget}};
}

inline ParamMap ToParamMap(const XAttentionParams& p) {
  return {{"block", p.block}, {"stride", p.stride}, {"threshold", p.threshold}};
}

inline ParamMap ToParamMap(const StreamingParams& p) {
  return {{"sink", p.sink}, {"window", p.window}};
}

// `floor` only for ada_snapkv (`adaptive`), the method that declares it.
inline ParamMap ToParamMap(const SnapKvParams& p) {
  ParamMap m = {{"window", p.window},
                {"pool", p.pool},
                {"keep_first", p.keep_first},
                {"keep_last", p.keep_last},
                {"token_capacity", p.token_capacity}};
  if (p.adaptive) m["floor"] = p.floor;
  return m;
}

// PrefillSelect of `method` with the parameters of `p`.
template <typename Typed>
absl::StatusOr<SelectionResult> PrefillSelectTyped(absl::string_view method, const Typed& p,
                                                   const AttentionInput& input) {
  SF_ASSIGN_OR_RETURN(const MethodParams params, ParseMethodParams(method, ToParamMap(p)));
  return PrefillSelect(method, params, input);
}

// DecodeAttention of `method` with the parameters of `p`.
template <typename Typed>
absl::StatusOr<AttentionResult> DecodeAttentionTyped(absl::string_view method, const Typed& p,
                                                     const AttentionInput& steps,
                                                     const TensorView& observation_q) {
  SF_ASSIGN_OR_RETURN(const MethodParams params, ParseMethodParams(method, ToParamMap(p)));
  return DecodeAttention(method, params, steps, observation_q);
}

// CompressKv of `method` with the parameters of `p`.
template <typename Typed>
absl::StatusOr<KeptTokens> CompressKvTyped(absl::string_view method, const Typed& p,
                                           const TensorView& observation_q,
                                           const TensorView& keys) {
  SF_ASSIGN_OR_RETURN(const MethodParams params, ParseMethodParams(method, ToParamMap(p)));
  return CompressKv(method, params, observation_q, keys);
}

}  // namespace sf::kernels::testing

#endif  // SF_KERNELS_CPU_METHODS_TESTING_TYPED_PARAMS_H_
