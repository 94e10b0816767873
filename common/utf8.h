// UTF-8 validation and repair, the one strict definition the project uses: the
// tokenizer splits input at invalid bytes, and text that crosses a protocol or storage
// boundary is repaired (model outputs can stop in the middle of a character, and
// protobuf string fields reject invalid UTF-8).
#ifndef SF_COMMON_UTF8_H_
#define SF_COMMON_UTF8_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace sf {

// Length in bytes of the longest prefix of `text` that is valid UTF-8. Strict: overlong
// forms, surrogates (U+D800-U+DFFF) and code points past U+10FFFF are invalid, as is a
// sequence cut short by the end of `text`. Equals text.size() for valid text.
size_t ValidUtf8PrefixLength(absl::string_view text);

// `text` with every invalid or truncated UTF-8 sequence replaced by U+FFFD, one per
// invalid byte; valid text is returned unchanged.
std::string ToValidUtf8(absl::string_view text);

}  // namespace sf

#endif  // SF_COMMON_UTF8_H_
