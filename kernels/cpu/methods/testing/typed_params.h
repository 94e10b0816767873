// For tests: the CPU reference called with a method's typed parameters
// (kernels/cpu/methods/<name>.h) or a ParamMap, so a test drives a CUDA selection and
// the reference with one struct.
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

// A ParamMap goes through ParseMethodParams (the registry's checks); a typed struct is
// bound as the CUDA selection takes it (kernels/cpu/methods/<name>.h).
inline absl::StatusOr<MethodParams> ToMethodParams(absl::string_view method, const ParamMap& p) {
  return ParseMethodParams(method, p);
}
inline absl::StatusOr<MethodParams> ToMethodParams(absl::string_view,
                                                   const VerticalSlashParams& p) {
  return VerticalSlashMethodParams(p);
}
inline absl::StatusOr<MethodParams> ToMethodParams(absl::string_view, const FlexPrefillParams& p) {
  return FlexPrefillMethodParams(p);
}
inline absl::StatusOr<MethodParams> ToMethodParams(absl::string_view, const BlockSparseParams& p) {
  return BlockSparseMethodParams(p);
}
inline absl::StatusOr<MethodParams> ToMethodParams(absl::string_view, const XAttentionParams& p) {
  return XAttentionMethodParams(p);
}
inline absl::StatusOr<MethodParams> ToMethodParams(absl::string_view, const StreamingParams& p) {
  return StreamingMethodParams(p);
}
inline absl::StatusOr<MethodParams> ToMethodParams(absl::string_view, const SnapKvParams& p) {
  return SnapKvMethodParams(p);
}

// PrefillSelect of `method` with the parameters of `p`.
template <typename Typed>
absl::StatusOr<SelectionResult> PrefillSelectTyped(absl::string_view method, const Typed& p,
                                                   const AttentionInput& input) {
  SF_ASSIGN_OR_RETURN(const MethodParams params, ToMethodParams(method, p));
  return PrefillSelect(method, params, input);
}

// DecodeAttention of `method` with the parameters of `p`.
template <typename Typed>
absl::StatusOr<AttentionResult> DecodeAttentionTyped(absl::string_view method, const Typed& p,
                                                     const AttentionInput& steps,
                                                     const TensorView& observation_q) {
  SF_ASSIGN_OR_RETURN(const MethodParams params, ToMethodParams(method, p));
  return DecodeAttention(method, params, steps, observation_q);
}

// CompressKv of `method` with the parameters of `p`.
template <typename Typed>
absl::StatusOr<KeptTokens> CompressKvTyped(absl::string_view method, const Typed& p,
                                           const TensorView& observation_q,
                                           const TensorView& keys) {
  SF_ASSIGN_OR_RETURN(const MethodParams params, ToMethodParams(method, p));
  return CompressKv(method, params, observation_q, keys);
}

}  // namespace sf::kernels::testing

#endif  // SF_KERNELS_CPU_METHODS_TESTING_TYPED_PARAMS_H_
