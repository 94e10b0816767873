#include "common/status.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf {
namespace {

using ::sf::testing::IsOk;
using ::sf::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::StatusOr<int> Quarter(int x) {
  SF_ASSIGN_OR_RETURN(int half, Half(x));
  SF_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

absl::Status CheckEven(int x) {
  SF_RETURN_IF_ERROR(Half(x));
  SF_RETURN_IF_ERROR(absl::OkStatus());
  return absl::OkStatus();
}

TEST(StatusMacros, AssignOrReturn_PropagatesValueAndError) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_THAT(Quarter(6), StatusIs(absl::StatusCode::kInvalidArgument, "odd"));
  EXPECT_THAT(Quarter(3), Not(IsOk()));
}

TEST(StatusMacros, ReturnIfError_StopsAtFirstError) {
  EXPECT_THAT(CheckEven(4), IsOk());
  EXPECT_THAT(CheckEven(5), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("odd")));
}

TEST(Annotate, PrependsContextAndKeepsCode) {
  absl::Status s = Annotate(absl::NotFoundError("no such file"), "loading shard 3");
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound, "loading shard 3: no such file"));
  EXPECT_THAT(Annotate(absl::OkStatus(), "ignored"), IsOk());
}

TEST(StatusMatchers, AssertOkAndAssign_BindsValue) {
  SF_ASSERT_OK_AND_ASSIGN(int q, Quarter(12));
  EXPECT_EQ(q, 3);
}

}  // namespace
}  // namespace sf
