#include "common/did_you_mean.h"

#include "gtest/gtest.h"

namespace sf {
namespace {

TEST(ClosestName, PicksThePlausibleTypo) {
  const std::vector<std::string> flags = {"--format", "--db", "--wide", "--coordinator"};
  EXPECT_EQ(ClosestName("--formt", flags), "--format");
  EXPECT_EQ(ClosestName("--fromat", flags), "--format");  // a swap is two edits
  EXPECT_EQ(ClosestName("--cordinator", flags), "--coordinator");
}

TEST(ClosestName, NothingWhenNoCandidateIsClose) {
  EXPECT_EQ(ClosestName("--frobnicate", {"--format", "--db"}), std::nullopt);
  EXPECT_EQ(ClosestName("anything", {}), std::nullopt);
}

TEST(ClosestName, ShortNamesAllowTwoEdits) {
  // max(2, a third of the candidate's length): "db" is within 2 edits of "dv" and "d".
  EXPECT_EQ(ClosestName("dv", {"db"}), "db");
  EXPECT_EQ(ClosestName("xyz", {"db"}), std::nullopt);
}

}  // namespace
}  // namespace sf
