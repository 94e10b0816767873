// A fake clock whose SleepFor returns at once after moving time forward by the amount
// slept, recording each sleep: backoff sequences are checked without waiting, and
// Advance() moves time for deadlines (heartbeats) that no one sleeps for.
#ifndef SF_WORKER_TESTING_STEPPING_CLOCK_H_
#define SF_WORKER_TESTING_STEPPING_CLOCK_H_

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace sf::worker::testing {

class SteppingClock : public Clock {
 public:
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void SleepFor(absl::Duration d) override {
    absl::MutexLock lock(&mu_);
    sleeps_.push_back(d);
    now_ += d;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  std::vector<absl::Duration> sleeps() const {
    absl::MutexLock lock(&mu_);
    return sleeps_;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::FromUnixSeconds(1'700'000'000);
  std::vector<absl::Duration> sleeps_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sf::worker::testing

#endif  // SF_WORKER_TESTING_STEPPING_CLOCK_H_
