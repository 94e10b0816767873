// Time as an injected dependency: production code reads a Clock, tests drive a
// FakeClock so that leases, backoff and timeouts are tested without sleeping.
#ifndef SF_COMMON_CLOCK_H_
#define SF_COMMON_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sf {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // Blocks for `d` of this clock's time (a FakeClock returns once advanced past it).
  virtual void SleepFor(absl::Duration d) = 0;
};

// The wall clock. Thread-safe; one process-wide instance.
Clock& RealClock();

// A clock that moves only when told to. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000));

  absl::Time Now() const override;
  // Returns once another thread has advanced the clock by `d` (or at once if d <= 0).
  void SleepFor(absl::Duration d) override;

  void Advance(absl::Duration d);
  void SetTime(absl::Time t);
  // Blocks until at least `n` threads are inside SleepFor(), so that a test can
  // advance time knowing who is waiting for it.
  void AwaitSleepers(int n) const;

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  int sleepers_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace sf

#endif  // SF_COMMON_CLOCK_H_
