#include "methods/registry.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status.h"
#include "methods/method_list.h"
#include "methods/params.h"

namespace sf {

const std::vector<MethodInfo>& AllMethods() {
#define SF_CALL_METHOD(fn) methods::fn(),
  static const auto* all = new std::vector<MethodInfo>{SF_METHOD_LIST(SF_CALL_METHOD)};
#undef SF_CALL_METHOD
  return *all;
}

const MethodInfo* FindMethod(absl::string_view name) {
  for (const MethodInfo& m : AllMethods()) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

const MethodParam* FindParam(const MethodInfo& method, absl::string_view param) {
  for (const MethodParam& p : method.params) {
    if (param == p.name) return &p;
  }
  return nullptr;
}

const MethodInfo& BaselineMethod() {
  for (const MethodInfo& m : AllMethods()) {
    if (m.budget_rule == BudgetRule::kNone) return m;
  }
  SF_CHECK(false) << "the registry has no method without a budget";
  return AllMethods().front();
}

absl::StatusOr<const MethodInfo*> LookUpMethod(absl::string_view name) {
  const MethodInfo* info = FindMethod(name);
  if (info == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown attention method '", name, "'; see sfctl fidelity --help"));
  }
  return info;
}

ParamMap DefaultParams(const MethodInfo& method) {
  ParamMap out;
  for (const MethodParam& p : method.params) {
    if (p.default_value[0] == '\0') continue;
    absl::StatusOr<ParamValue> v = ParamFromText(p, p.default_value);
    SF_CHECK(v.ok()) << method.name << "." << p.name << ": " << v.status();
    out[p.name] = *std::move(v);
  }
  return out;
}

absl::StatusOr<ParamMap> ParamsForCompression(absl::string_view method, const ParamMap& params,
                                              double compression, int64_t seq_len, Phase phase) {
  const MethodInfo* info = FindMethod(method);
  if (info == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown attention method '", method, "'"));
  }
  if (!(compression >= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("compression must be >= 1 (1 = dense), got ", compression));
  }
  if (seq_len < 1) {
    return absl::InvalidArgumentError(absl::StrCat("sequence length must be >= 1, got ", seq_len));
  }
  if (info->budget_rule == BudgetRule::kNone) return params;
  if (info->budget_rule == BudgetRule::kMassThreshold || info->map_compression == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "method ", method, " sets its budget by a mass threshold ('", info->budget_param,
        "'); its compression depends on the data: give '", info->budget_param,
        "' natively or calibrate it on inputs (sfctl fidelity does)"));
  }
  // The other parameters are checked and typed first; the budget is the mapping's.
  ParamMap others = params;
  others.erase(info->budget_param);
  for (const MethodParam& p : info->params) {
    if (p.set_by_compression) others.erase(p.name);
  }
  const ParamReader reader(*info, others);
  SF_RETURN_IF_ERROR(reader.CheckNamesKnown());
  SF_RETURN_IF_ERROR(reader.CheckAllButBudget());
  if (info->check != nullptr) SF_RETURN_IF_ERROR(info->check(reader));
  ParamMap out = others;  // the reader keeps reading `others`
  SF_RETURN_IF_ERROR(info->map_compression(reader, compression, seq_len, phase, &out));
  return out;
}

absl::StatusOr<double> NominalCompression(absl::string_view method, const ParamMap& params,
                                          int64_t seq_len, Phase phase) {
  SF_ASSIGN_OR_RETURN(const MethodInfo* info, LookUpMethod(method));
  const ParamReader reader(*info, params);
  SF_RETURN_IF_ERROR(reader.CheckNamesKnown());
  SF_RETURN_IF_ERROR(reader.CheckAllButBudget());
  if (info->check != nullptr) SF_RETURN_IF_ERROR(info->check(reader));
  if (info->budget_rule == BudgetRule::kNone) return 1.0;
  if (info->nominal_compression == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("method ", method,
                     " has no nominal compression: its budget is a mass threshold; "
                     "read the measured compression instead"));
  }
  return info->nominal_compression(reader, seq_len, phase);
}

absl::StatusOr<double> EstimationFlops(absl::string_view method, const EstimationInput& input) {
  const MethodInfo* info = FindMethod(method);
  if (info == nullptr || info->estimation_flops == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("no estimation FLOPs formula for method '", method,
                     "': record the worker's measured indexing FLOPs instead"));
  }
  return info->estimation_flops(input);
}

}  // namespace sf
