#include "common/utf8.h"

#include "gtest/gtest.h"

namespace sf {
namespace {

TEST(ToValidUtf8, ValidText_Unchanged) {
  const std::string text = "plain, caf\xC3\xA9, \xE4\xB8\xAD\xE6\x96\x87, \xF0\x9F\x98\x80";
  EXPECT_EQ(ToValidUtf8(text), text);
  EXPECT_EQ(ToValidUtf8(""), "");
}

TEST(ToValidUtf8, TruncatedCharacter_ReplacedByReplacementChar) {
  EXPECT_EQ(ToValidUtf8("ab\xE4\xB8"), "ab\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(ToValidUtf8("\xF0\x9F\x98"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(ToValidUtf8, InvalidBytes_EachReplaced) {
  EXPECT_EQ(ToValidUtf8("a\xFF"
                        "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(ToValidUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong '/'
  EXPECT_EQ(ToValidUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

TEST(ValidUtf8PrefixLength, StopsAtTheFirstInvalidOrCutSequence) {
  EXPECT_EQ(ValidUtf8PrefixLength(""), 0u);
  EXPECT_EQ(ValidUtf8PrefixLength("plain ascii text, longer than 8"), 31u);
  EXPECT_EQ(ValidUtf8PrefixLength("caf\xC3\xA9 \xF0\x9F\x98\x80"), 10u);
  EXPECT_EQ(ValidUtf8PrefixLength("abcdefghij\xE4\xB8"), 10u);  // cut by the end
  EXPECT_EQ(ValidUtf8PrefixLength("ab\xC0\xAF"), 2u);           // overlong
  EXPECT_EQ(ValidUtf8PrefixLength("ab\xED\xA0\x80"), 2u);       // surrogate
  EXPECT_EQ(ValidUtf8PrefixLength("\xF4\x90\x80\x80"), 0u);     // past U+10FFFF
  EXPECT_EQ(ValidUtf8PrefixLength("\xF4\x8F\xBF\xBF"), 4u);     // U+10FFFF itself
}

}  // namespace
}  // namespace sf
