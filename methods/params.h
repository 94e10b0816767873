// Typed reads of one method's parameters, with the registry's defaults and bounds, and
// the closed-form helpers the method files share.
#ifndef SF_METHODS_PARAMS_H_
#define SF_METHODS_PARAMS_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/job.h"
#include "methods/method.h"

namespace sf {

// Reads the parameters of `method` from `params`: a missing value takes the registry's
// default. Every read returns InvalidArgument naming the parameter and the method when
// the value is missing without a default, of the wrong type or out of bounds.
// REQUIRES: `name` is a parameter of the method (else Internal). Holds references:
// `method` and `params` must outlive the reader.
class ParamReader {
 public:
  ParamReader(const MethodInfo& method, const ParamMap& params)
      : method_(method), params_(params) {}

  const MethodInfo& method() const { return method_; }
  const ParamMap& map() const { return params_; }

  // InvalidArgument for a given name the method does not declare.
  absl::Status CheckNamesKnown() const;
  // Reads every declared parameter except the budget parameter and those set with it:
  // types, bounds and choices checked.
  absl::Status CheckAllButBudget() const;

  bool Has(absl::string_view name) const { return params_.count(std::string(name)) > 0; }
  absl::StatusOr<double> Number(absl::string_view name) const;
  absl::StatusOr<int64_t> Int(absl::string_view name) const;
  absl::StatusOr<bool> Bool(absl::string_view name) const;
  absl::StatusOr<std::string> Choice(absl::string_view name) const;

 private:
  const MethodInfo& method_;
  const ParamMap& params_;
};

// The value of `param` written as `text` (a default, or a command-line value).
// InvalidArgument when the text does not parse as the parameter's type.
absl::StatusOr<ParamValue> ParamFromText(const MethodParam& param, absl::string_view text);

// The integer in [lo, hi] whose compression is closest to `target`, for compression
// decreasing in the budget; ties go to the larger budget (the more accurate one).
int64_t ClosestBudget(int64_t lo, int64_t hi, double target,
                      const std::function<double(int64_t)>& compression);

}  // namespace sf

#endif  // SF_METHODS_PARAMS_H_
