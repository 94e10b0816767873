#include "common/logging.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf {
namespace {

TEST(Logging, ParseLogLevel_KnownAndUnknown) {
  LogLevel level = LogLevel::kInfo;
  EXPECT_TRUE(ParseLogLevel("DEBUG", &level));
  EXPECT_EQ(level, LogLevel::kDebug);
  EXPECT_TRUE(ParseLogLevel("warn", &level));
  EXPECT_EQ(level, LogLevel::kWarning);
  EXPECT_FALSE(ParseLogLevel("loud", &level));
  EXPECT_EQ(level, LogLevel::kWarning);
}

TEST(Logging, MessageAboveLevel_IsWrittenWithLocation) {
  SetMinLogLevel(LogLevel::kInfo);
  ::testing::internal::CaptureStderr();
  SF_LOG(INFO) << "hello " << 42;
  SF_LOG(DEBUG) << "hidden";
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(out, ::testing::HasSubstr("logging_test.cc"));
  EXPECT_THAT(out, ::testing::HasSubstr("hello 42\n"));
  EXPECT_THAT(out, ::testing::Not(::testing::HasSubstr("hidden")));
}

TEST(Logging, DisabledLevel_DoesNotEvaluateStream) {
  SetMinLogLevel(LogLevel::kError);
  int evaluations = 0;
  auto count = [&] { return ++evaluations; };
  SF_LOG(INFO) << count();
  EXPECT_EQ(evaluations, 0);
  SetMinLogLevel(LogLevel::kInfo);
}

TEST(LoggingDeathTest, CheckFailure_AbortsWithCondition) {
  EXPECT_DEATH(SF_CHECK(1 + 1 == 3) << "math", "Check failed: 1 \\+ 1 == 3 math");
}

}  // namespace
}  // namespace sf
