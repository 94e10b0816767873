// UTF-8 repair for text that crosses a protocol or storage boundary: model outputs can
// stop in the middle of a character, and protobuf string fields reject invalid UTF-8.
#ifndef SF_COMMON_UTF8_H_
#define SF_COMMON_UTF8_H_

#include <string>

#include "absl/strings/string_view.h"

namespace sf {

// `text` with every invalid or truncated UTF-8 sequence replaced by U+FFFD; valid
// text is returned unchanged.
std::string ToValidUtf8(absl::string_view text);

}  // namespace sf

#endif  // SF_COMMON_UTF8_H_
