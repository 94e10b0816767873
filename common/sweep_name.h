// What a sweep's name may be: the coordinator stores sweeps by name, and the spec, its
// file name or `--name` gives it. One rule, so that `sfctl validate` refuses what the
// coordinator would.
#ifndef SF_COMMON_SWEEP_NAME_H_
#define SF_COMMON_SWEEP_NAME_H_

#include <cstddef>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"

namespace sf {

inline constexpr size_t kMaxSweepNameLength = 128;
inline constexpr char kSweepNameRule[] = "1-128 characters of [A-Za-z0-9._-]";

inline bool IsValidSweepName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxSweepNameLength) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

}  // namespace sf

#endif  // SF_COMMON_SWEEP_NAME_H_
