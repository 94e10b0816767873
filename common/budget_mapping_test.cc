#include "common/budget_mapping.h"

#include <string>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf {
namespace {

using ::sf::testing::StatusIs;
using ::testing::HasSubstr;

int64_t Mapped(const char* method, int64_t length, double compression, const char* param,
               ParamMap params = {}) {
  const MethodInfo* info = FindMethod(method);
  EXPECT_NE(info, nullptr);
  EXPECT_THAT(ApplyCompressionTarget(*info, length, compression, &params), ::sf::testing::IsOk());
  return std::get<int64_t>(params.at(param));
}

TEST(ApplyCompressionTarget, DocumentedRules) {
  EXPECT_EQ(Mapped("snapkv", 1024, 4, "token_capacity"), 256);
  EXPECT_EQ(Mapped("ada_snapkv", 1000, 3, "token_capacity"), 334);
  EXPECT_EQ(Mapped("oracle_topk", 1024, 4, "top_k"), 256);
  EXPECT_EQ(Mapped("quest", 1000, 3, "token_budget", {{"page", int64_t{16}}}), 336);
  EXPECT_EQ(Mapped("quest", 64, 100, "token_budget", {{"page", int64_t{16}}}), 16);
  EXPECT_EQ(Mapped("streaming", 1024, 4, "window", {{"sink", int64_t{4}}}), 252);
  EXPECT_EQ(Mapped("block_sparse", 1024, 4, "block_budget", {{"block", int64_t{16}}}), 16);
  EXPECT_EQ(Mapped("block_sparse", 1000, 4, "block_budget", {{"block", int64_t{64}}}), 4);
  EXPECT_EQ(Mapped("vertical_slash", 1024, 4, "verticals"), 128);
  EXPECT_EQ(Mapped("vertical_slash", 1024, 4, "slashes"), 128);
}

TEST(ApplyCompressionTarget, BudgetsShrinkWithCompressionAndStayPositive) {
  for (const MethodInfo& m : AllMethods()) {
    if (!SupportsCompressionTarget(m)) continue;
    for (int64_t length : {1, 7, 512, 1023, 131072}) {
      int64_t previous = INT64_MAX;
      for (double c : {1.0, 1.5, 2.0, 10.0, 1000.0, 1e9}) {
        ParamMap params;
        ASSERT_THAT(ApplyCompressionTarget(m, length, c, &params), ::sf::testing::IsOk());
        const int64_t budget = std::get<int64_t>(params.at(m.budget_param));
        EXPECT_GE(budget, 1) << m.name << " " << length << " " << c;
        EXPECT_LE(budget, previous) << m.name << " " << length << " " << c;
        previous = budget;
        for (const auto& [name, value] : params) {
          EXPECT_TRUE(IsSetByCompression(m, name)) << m.name << " set " << name;
        }
      }
    }
  }
}

TEST(ApplyCompressionTarget, RefusesDenseAndAdaptiveMethods) {
  ParamMap params;
  EXPECT_THAT(ApplyCompressionTarget(*FindMethod("dense"), 1024, 2, &params),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no budget")));
  EXPECT_THAT(ApplyCompressionTarget(*FindMethod("flexprefill"), 1024, 2, &params),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("give `gamma`")));
  EXPECT_THAT(ApplyCompressionTarget(*FindMethod("xattention"), 1024, 2, &params),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("give `threshold`")));
  EXPECT_TRUE(params.empty());
}

}  // namespace
}  // namespace sf
