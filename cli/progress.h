// Live progress of sweeps for `sfctl watch` and `sfctl run`: one bar per sweep with
// done/running/failed/queued, throughput and ETA. On a terminal the bars are redrawn in
// place; otherwise (a pipe, a log file, a test) each change prints one plain line.
#ifndef SF_CLI_PROGRESS_H_
#define SF_CLI_PROGRESS_H_

#include <iosfwd>
#include <map>
#include <string>

#include "absl/time/time.h"
#include "common/clock.h"
#include "sf/v1/coordinator.pb.h"

namespace sf::cli {

// One sweep's state as one line, e.g.
// "quickstart  [######----]  60%  done 53/88  running 2  failed 1  queued 32  4.1 samples/s  ETA
// 1m5s"
std::string FormatProgressLine(const v1::Sweep& sweep, double samples_per_second, int bar_width);

class ProgressDisplay {
 public:
  // `terminal`: redraw in place with ANSI escapes. `clock` times throughput.
  ProgressDisplay(std::ostream& out, bool terminal, Clock* clock,
                  absl::Duration min_interval = absl::Seconds(1));
  // Shows the sweep's latest state (a plain line only when its counts changed and
  // min_interval passed, or the sweep finished).
  void Update(const v1::Sweep& sweep);

 private:
  struct Track {
    v1::Sweep last;
    absl::Time first_seen;
    int64_t first_samples = 0;
    std::string printed;  // the counts of the last plain line
    absl::Time printed_at = absl::InfinitePast();
  };
  double Rate(const Track& t, const v1::Sweep& sweep) const;
  void Redraw();

  std::ostream& out_;
  const bool terminal_;
  Clock* const clock_;
  const absl::Duration min_interval_;
  std::map<int64_t, Track> sweeps_;
  int lines_drawn_ = 0;
};

// Whether `out` is this process's stdout and that is a terminal.
bool IsTerminal(const std::ostream& out);

}  // namespace sf::cli

#endif  // SF_CLI_PROGRESS_H_
