// GoogleTest matchers for absl::Status and absl::StatusOr:
//   EXPECT_THAT(DoIt(), IsOk());
//   EXPECT_THAT(Parse(x), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 3")));
//   SF_ASSERT_OK_AND_ASSIGN(auto value, MakeValue());
#ifndef SF_COMMON_TESTING_STATUS_MATCHERS_H_
#define SF_COMMON_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf::testing {

MATCHER(IsOk, negation ? "is not OK" : "is OK") {
  const absl::Status& status = ::sf::status_internal::GetStatus(arg);
  if (!status.ok()) *result_listener << "status is " << status;
  return status.ok();
}

MATCHER_P2(StatusIs, code, message_matcher,
           std::string("has code ") + absl::StatusCodeToString(code)) {
  const absl::Status& status = ::sf::status_internal::GetStatus(arg);
  *result_listener << "status is " << status;
  if (status.code() != code) return false;
  return ::testing::ExplainMatchResult(message_matcher, std::string(status.message()),
                                       result_listener);
}

}  // namespace sf::testing

#define SF_EXPECT_OK(expr) EXPECT_THAT((expr), ::sf::testing::IsOk())
#define SF_ASSERT_OK(expr) ASSERT_THAT((expr), ::sf::testing::IsOk())

#define SF_ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  SF_ASSERT_OK_AND_ASSIGN_IMPL_(SF_STATUS_CONCAT_(sf_test_statusor_, __LINE__), lhs, rexpr)
#define SF_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                  \
  ASSERT_TRUE(statusor.ok()) << statusor.status();          \
  lhs = *std::move(statusor)

#endif  // SF_COMMON_TESTING_STATUS_MATCHERS_H_
