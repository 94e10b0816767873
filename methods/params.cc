#include "methods/params.h"

#include <cmath>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "methods/registry.h"

namespace sf {

absl::Status ParamReader::CheckNamesKnown() const {
  for (const auto& [name, value] : params_) {
    if (FindParam(method_, name) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("method ", method_.name, " has no parameter '",
                                                     name, "'; see sfctl fidelity --help"));
    }
  }
  return absl::OkStatus();
}

absl::Status ParamReader::CheckAllButBudget() const {
  for (const MethodParam& p : method_.params) {
    if (p.name == absl::string_view(method_.budget_param) || p.set_by_compression) continue;
    switch (p.type) {
      case ParamType::kInt:
      case ParamType::kFloat:
        SF_RETURN_IF_ERROR(Number(p.name).status());
        break;
      case ParamType::kBool:
        SF_RETURN_IF_ERROR(Bool(p.name).status());
        break;
      case ParamType::kString:
        SF_RETURN_IF_ERROR(Choice(p.name).status());
        break;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<double> ParamReader::Number(absl::string_view name) const {
  const MethodParam* p = FindParam(method_, name);
  if (p == nullptr) return absl::InternalError(absl::StrCat("the registry lacks ", name));
  double value = 0;
  auto it = params_.find(std::string(name));
  if (it == params_.end()) {
    if (*p->default_value == '\0') {
      return absl::InvalidArgumentError(absl::StrCat("parameter '", name, "' of method ",
                                                     method_.name,
                                                     " is required (or give a compression)"));
    }
    value = std::stod(p->default_value);
  } else if (const int64_t* i = std::get_if<int64_t>(&it->second)) {
    value = static_cast<double>(*i);
  } else if (const double* d = std::get_if<double>(&it->second)) {
    if (p->type == ParamType::kInt && std::floor(*d) != *d) {
      return absl::InvalidArgumentError(absl::StrCat(
          "parameter '", name, "' of method ", method_.name, " must be an integer, got ", *d));
    }
    value = *d;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter '", name, "' of method ", method_.name, " must be a number"));
  }
  if (!(value >= p->min && value <= p->max)) {
    return absl::InvalidArgumentError(absl::StrCat("parameter '", name, "' of method ",
                                                   method_.name, " is ", value, "; allowed [",
                                                   p->min, ", ", p->max, "]"));
  }
  return value;
}

absl::StatusOr<int64_t> ParamReader::Int(absl::string_view name) const {
  SF_ASSIGN_OR_RETURN(double v, Number(name));
  return static_cast<int64_t>(v);
}

absl::StatusOr<bool> ParamReader::Bool(absl::string_view name) const {
  const MethodParam* p = FindParam(method_, name);
  if (p == nullptr) return absl::InternalError(absl::StrCat("the registry lacks ", name));
  auto it = params_.find(std::string(name));
  if (it == params_.end()) return std::string(p->default_value) == "true";
  if (const bool* b = std::get_if<bool>(&it->second)) return *b;
  return absl::InvalidArgumentError(
      absl::StrCat("parameter '", name, "' of method ", method_.name, " must be true or false"));
}

absl::StatusOr<std::string> ParamReader::Choice(absl::string_view name) const {
  const MethodParam* p = FindParam(method_, name);
  if (p == nullptr) return absl::InternalError(absl::StrCat("the registry lacks ", name));
  auto it = params_.find(std::string(name));
  std::string value = p->default_value;
  if (it != params_.end()) {
    const std::string* s = std::get_if<std::string>(&it->second);
    if (s == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("parameter '", name, "' of method ",
                                                     method_.name, " must be one of ", p->choices));
    }
    value = *s;
  }
  for (absl::string_view c : absl::StrSplit(p->choices, '|')) {
    if (c == value) return value;
  }
  return absl::InvalidArgumentError(absl::StrCat("parameter '", name, "' of method ", method_.name,
                                                 " is '", value, "'; allowed: ", p->choices));
}

absl::StatusOr<ParamValue> ParamFromText(const MethodParam& p, absl::string_view text) {
  switch (p.type) {
    case ParamType::kInt: {
      int64_t v;
      if (absl::SimpleAtoi(text, &v)) return v;
      break;
    }
    case ParamType::kFloat: {
      double v;
      if (absl::SimpleAtod(text, &v)) return v;
      break;
    }
    case ParamType::kBool: {
      bool v;
      if (absl::SimpleAtob(text, &v)) return v;
      break;
    }
    case ParamType::kString:
      return std::string(text);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", text, "' is not a valid value for parameter '", p.name, "'"));
}

int64_t ClosestBudget(int64_t lo, int64_t hi, double target,
                      const std::function<double(int64_t)>& compression) {
  if (lo >= hi) return hi;
  // Binary search the largest budget whose compression is still >= target.
  int64_t a = lo, b = hi;
  while (a < b) {
    const int64_t mid = a + (b - a + 1) / 2;
    if (compression(mid) >= target) {
      a = mid;
    } else {
      b = mid - 1;
    }
  }
  int64_t best = a;
  if (a + 1 <= hi && std::abs(compression(a + 1) - target) <= std::abs(compression(a) - target)) {
    best = a + 1;
  }
  return best;
}

}  // namespace sf
