// Status helpers: early-return macros over absl::Status / absl::StatusOr and a
// helper that adds context to an error while keeping its code.
#ifndef SF_COMMON_STATUS_H_
#define SF_COMMON_STATUS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace sf {

// Returns `status` with "context: " prepended to its message; OK stays OK.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

namespace status_internal {
inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace status_internal

}  // namespace sf

#define SF_STATUS_CONCAT_INNER_(a, b) a##b
#define SF_STATUS_CONCAT_(a, b) SF_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (a Status or StatusOr) and returns its status from the
// enclosing function when it is not OK.
#define SF_RETURN_IF_ERROR(expr)                                  \
  do {                                                            \
    const auto& sf_status_ref_ = (expr);                          \
    if (!::sf::status_internal::GetStatus(sf_status_ref_).ok()) { \
      return ::sf::status_internal::GetStatus(sf_status_ref_);    \
    }                                                             \
  } while (false)

// `SF_ASSIGN_OR_RETURN(auto x, MakeX());` declares/assigns `x` from the value of
// a StatusOr, or returns its status from the enclosing function.
#define SF_ASSIGN_OR_RETURN(lhs, rexpr) \
  SF_ASSIGN_OR_RETURN_IMPL_(SF_STATUS_CONCAT_(sf_statusor_, __LINE__), lhs, rexpr)

#define SF_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                              \
  if (!statusor.ok()) {                                 \
    return std::move(statusor).status();                \
  }                                                     \
  lhs = *std::move(statusor)

#endif  // SF_COMMON_STATUS_H_
