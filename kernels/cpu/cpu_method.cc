// The CPU table of methods and the entry points that dispatch through it.
#include "kernels/cpu/cpu_method.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "kernels/cpu/methods/method_list.h"
#include "methods/registry.h"

namespace sf::kernels {
namespace {

const std::vector<CpuMethodEntry>& CpuMethods() {
#define SF_CALL_CPU_METHOD(fn) fn(),
  static const auto* all = new std::vector<CpuMethodEntry>{SF_CPU_METHOD_LIST(SF_CALL_CPU_METHOD)};
#undef SF_CALL_CPU_METHOD
  return *all;
}

// Names of the registered methods that run in `phase`, for messages.
std::string MethodsOfPhase(Phase phase) {
  std::vector<std::string> names;
  for (const MethodInfo& m : AllMethods()) {
    if (m.phases.Has(phase)) names.push_back(m.name);
  }
  return absl::StrJoin(names, ", ");
}

absl::Status CheckBelongs(absl::string_view method, const MethodParams& params) {
  if (method != params.method().info().name) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameters given do not belong to method ", method));
  }
  return absl::OkStatus();
}

}  // namespace

const CpuMethodEntry* FindCpuMethod(absl::string_view method) {
  for (const CpuMethodEntry& e : CpuMethods()) {
    if (method == e.name) return &e;
  }
  return nullptr;
}

absl::StatusOr<MethodParams> ParseMethodParams(absl::string_view method, const ParamMap& params) {
  SF_ASSIGN_OR_RETURN(const MethodInfo* info, LookUpMethod(method));
  const CpuMethodEntry* entry = FindCpuMethod(method);
  if (entry == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("method ", method, " has no CPU selection (kernels/cpu/methods)"));
  }
  const ParamReader reader(*info, params);
  SF_RETURN_IF_ERROR(reader.CheckNamesKnown());
  SF_ASSIGN_OR_RETURN(std::shared_ptr<const CpuMethod> bound, entry->bind(reader));
  if (info->check != nullptr) SF_RETURN_IF_ERROR(info->check(reader));
  return MethodParams(std::move(bound));
}

absl::StatusOr<SelectionResult> CpuMethod::SelectPrefill(const AttentionInput&) const {
  return absl::InvalidArgumentError(absl::StrCat(
      "method ", info_.name, " is a decode method (its prefill is dense); use it for decode"));
}

absl::StatusOr<SelectionResult> CpuMethod::SelectDecode(const AttentionInput& steps,
                                                        const TensorView&) const {
  if (info_.phases.both()) return SelectPrefill(steps);  // the same rule per step
  return absl::InvalidArgumentError(absl::StrCat(
      "method ", info_.name, " is a prefill method; decode uses ", MethodsOfPhase(Phase::kDecode)));
}

absl::StatusOr<KeptTokens> CpuMethod::CompressKv(const TensorView&, const TensorView&) const {
  return absl::InvalidArgumentError(
      absl::StrCat("method ", info_.name, " does not compress the KV cache after prefill"));
}

absl::StatusOr<SelectionResult> PrefillSelect(absl::string_view method, const MethodParams& params,
                                              const AttentionInput& input) {
  SF_RETURN_IF_ERROR(ValidateInput(input));
  SF_RETURN_IF_ERROR(CheckBelongs(method, params));
  return params.method().SelectPrefill(input);
}

absl::StatusOr<AttentionResult> PrefillAttention(absl::string_view method,
                                                 const MethodParams& params,
                                                 const AttentionInput& input) {
  SF_ASSIGN_OR_RETURN(SelectionResult s, PrefillSelect(method, params, input));
  AttentionResult r = AttendSelected(input, std::move(s.selection));
  r.estimation_flops = s.estimation_flops;
  return r;
}

absl::StatusOr<SelectionResult> DecodeSelect(absl::string_view method, const MethodParams& params,
                                             const AttentionInput& steps,
                                             const TensorView& observation_q) {
  SF_RETURN_IF_ERROR(ValidateInput(steps));
  if (steps.q_offset < 1) {
    return absl::InvalidArgumentError(
        "decode: the steps' q_offset (the prompt length) must be >= 1");
  }
  SF_RETURN_IF_ERROR(CheckBelongs(method, params));
  return params.method().SelectDecode(steps, observation_q);
}

absl::StatusOr<AttentionResult> DecodeAttention(absl::string_view method,
                                                const MethodParams& params,
                                                const AttentionInput& steps,
                                                const TensorView& observation_q) {
  SF_ASSIGN_OR_RETURN(SelectionResult s, DecodeSelect(method, params, steps, observation_q));
  AttentionResult r = AttendSelected(steps, std::move(s.selection));
  r.estimation_flops = s.estimation_flops;
  return r;
}

absl::StatusOr<KeptTokens> CompressKv(absl::string_view method, const MethodParams& params,
                                      const TensorView& observation_q, const TensorView& keys) {
  SF_RETURN_IF_ERROR(CheckBelongs(method, params));
  return params.method().CompressKv(observation_q, keys);
}

}  // namespace sf::kernels
