#include "common/logging.h"

#include <string>
#include <vector>

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

TEST(Logging, Sink_ReceivesWholeLinesInsteadOfStderr_UntilCleared) {
  SetMinLogLevel(LogLevel::kInfo);
  std::vector<std::string> lines;
  SetLogSink([&lines](absl::string_view line) { lines.emplace_back(line); });
  ::testing::internal::CaptureStderr();
  SF_LOG(WARNING) << "to the sink";
  SetLogSink(nullptr);
  SF_LOG(WARNING) << "to stderr";
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], ::testing::HasSubstr("to the sink\n"));
  EXPECT_THAT(lines[0], ::testing::StartsWith("W "));
  EXPECT_THAT(err, ::testing::Not(::testing::HasSubstr("to the sink")));
  EXPECT_THAT(err, ::testing::HasSubstr("to stderr"));
}

TEST(LoggingDeathTest, CheckFailure_AbortsWithCondition) {
  EXPECT_DEATH(SF_CHECK(1 + 1 == 3) << "math", "Check failed: 1 \\+ 1 == 3 math");
}

}  // namespace
}  // namespace sf
