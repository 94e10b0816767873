// A method's parameters as the kernels use them: ParseMethodParams checks a ParamMap
// against the method registry (methods/registry.h: defaults, bounds, cross-parameter
// checks) and binds it to the method's CPU selection (kernels/cpu/methods/<name>.cc).
#ifndef SF_KERNELS_CPU_METHOD_PARAMS_H_
#define SF_KERNELS_CPU_METHOD_PARAMS_H_

#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/job.h"
#include "common/phase.h"

namespace sf::kernels {

class CpuMethod;  // kernels/cpu/cpu_method.h

// Typed, checked parameters bound to their method's CPU selection. Cheap to copy
// (shared, immutable).
class MethodParams {
 public:
  explicit MethodParams(std::shared_ptr<const CpuMethod> method) : method_(std::move(method)) {}
  const CpuMethod& method() const { return *method_; }

 private:
  std::shared_ptr<const CpuMethod> method_;
};

// Parses `params` for the registry method `method`: fills defaults, checks types, the
// registry's bounds and the method's own checks. Unknown method or parameter, a missing
// parameter without default, a wrong type or a value out of bounds -> InvalidArgument
// naming the parameter. Sequence-dependent checks (budget vs length) happen when the
// method runs. FailedPrecondition for a registered method without a CPU selection.
absl::StatusOr<MethodParams> ParseMethodParams(absl::string_view method, const ParamMap& params);

}  // namespace sf::kernels

#endif  // SF_KERNELS_CPU_METHOD_PARAMS_H_
