// The catalog of sparse-attention methods: names, phases and parameters with their
// defaults and bounds. One source of truth for the sweep spec's validation, sfctl's
// help and the kernels library (which maps these parameters to its own structs).
#ifndef SF_COMMON_METHOD_CATALOG_H_
#define SF_COMMON_METHOD_CATALOG_H_

#include <span>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace sf {

enum class MethodPhase { kPrefill, kDecode, kBoth };

enum class ParamType { kInt, kFloat, kBool, kString };

struct MethodParam {
  const char* name;
  ParamType type;
  // Default as text ("" = no default: the value must come from the spec or from a
  // compression target). Strings list allowed values in `choices`.
  const char* default_value;
  double min;  // inclusive bounds for numbers
  double max;
  const char* choices;  // "|"-separated allowed values for kString, else ""
  const char* help;
};

struct MethodInfo {
  const char* name;
  MethodPhase phase;
  // The parameter that sets the budget natively (e.g. "token_capacity"); a spec gives
  // either it or `compression` (mapped to it per sequence length), not both. "" for dense.
  const char* budget_param;
  std::span<const MethodParam> params;
  const char* summary;
};

// Every method, in a stable order.
std::span<const MethodInfo> AllMethods();

// The method named `name`, or nullptr.
const MethodInfo* FindMethod(absl::string_view name);

// The parameter `param` of `method`, or nullptr.
const MethodParam* FindParam(const MethodInfo& method, absl::string_view param);

const char* PhaseName(MethodPhase phase);

}  // namespace sf

#endif  // SF_COMMON_METHOD_CATALOG_H_
