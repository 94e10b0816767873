#include "common/clock.h"

#include <thread>

#include "gtest/gtest.h"

namespace sf {
namespace {

TEST(FakeClock, Advance_MovesTimeExactly) {
  FakeClock clock(absl::FromUnixSeconds(100));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(100));
  clock.Advance(absl::Seconds(30));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(130));
  clock.SetTime(absl::FromUnixSeconds(5));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(5));
}

TEST(FakeClock, SleepFor_ReturnsOnlyAfterAdvance) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  std::thread sleeper([&] { clock.SleepFor(absl::Minutes(5)); });
  clock.AwaitSleepers(1);
  clock.Advance(absl::Minutes(2));
  clock.Advance(absl::Minutes(3));
  sleeper.join();
  EXPECT_EQ(clock.Now() - start, absl::Minutes(5));
}

TEST(FakeClock, SleepFor_NonPositiveReturnsAtOnce) {
  FakeClock clock;
  clock.SleepFor(absl::ZeroDuration());
  clock.SleepFor(absl::Seconds(-1));
  SUCCEED();
}

TEST(RealClock, IsMonotoneEnoughAndNearNow) {
  const absl::Time a = RealClock().Now();
  const absl::Time b = RealClock().Now();
  EXPECT_LE(a, b);
  EXPECT_LT(absl::AbsDuration(a - absl::Now()), absl::Seconds(5));
}

}  // namespace
}  // namespace sf
