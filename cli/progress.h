// Live progress of sweeps for `sfctl watch` and `sfctl run`: one bar per sweep with
// done/running/failed/queued, throughput and ETA. On a terminal the bars are redrawn in
// place; otherwise (a pipe, a log file, a test) each change prints one plain line.
#ifndef SF_CLI_PROGRESS_H_
#define SF_CLI_PROGRESS_H_

#include <iosfwd>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "sf/v1/coordinator.pb.h"

namespace sf::cli {

// One sweep's state as one line, e.g.
// "quickstart  [######----]  60%  done 53/88  running 2  failed 1  queued 32  4.1 samples/s  ETA
// 1m5s"
std::string FormatProgressLine(const v1::Sweep& sweep, double samples_per_second, int bar_width);

// Thread-safe: the watch loop updates it while log lines and failure notes arrive from
// other threads.
class ProgressDisplay {
 public:
  // `terminal`: redraw in place with ANSI escapes. `clock` times throughput.
  ProgressDisplay(std::ostream& out, bool terminal, Clock* clock,
                  absl::Duration min_interval = absl::Seconds(1));
  // Shows the sweep's latest state (a plain line only when its counts changed and
  // min_interval passed, or the sweep finished). Clears the notice.
  void Update(const v1::Sweep& sweep);
  // Prints `line` (no trailing newline needed) above the bars, which are redrawn below
  // it, so that log lines and failure reasons never break the in-place display.
  void Note(absl::string_view line);
  // A transient state shown under the bars until the next Update or another notice
  // ("" clears it), e.g. "coordinator unreachable for 12s; reconnecting". Without a
  // terminal, printed once when it starts, and "<text> ... back" once cleared.
  void SetNotice(const std::string& text);

 private:
  struct Track {
    v1::Sweep last;
    absl::Time first_seen;
    int64_t first_samples = 0;
    std::string printed;  // the counts of the last plain line
    absl::Time printed_at = absl::InfinitePast();
  };
  double Rate(const Track& t, const v1::Sweep& sweep) const;
  void ClearLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RedrawLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetNoticeLocked(const std::string& text) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::ostream& out_;
  const bool terminal_;
  Clock* const clock_;
  const absl::Duration min_interval_;
  absl::Mutex mu_;
  std::map<int64_t, Track> sweeps_ ABSL_GUARDED_BY(mu_);
  std::string notice_ ABSL_GUARDED_BY(mu_);
  int lines_drawn_ ABSL_GUARDED_BY(mu_) = 0;
};

// Whether `out` is this process's stdout and that is a terminal.
bool IsTerminal(const std::ostream& out);

}  // namespace sf::cli

#endif  // SF_CLI_PROGRESS_H_
