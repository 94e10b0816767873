#include "cli/progress.h"

#include <unistd.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sf::cli {
namespace {

std::string ShortDuration(double seconds) {
  if (seconds < 0 || seconds > 1e7) return "?";
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrCat(s / 60, "m", s % 60, "s");
  return absl::StrCat(s / 3600, "h", (s % 3600) / 60, "m");
}

bool Finished(const v1::Sweep& sweep) {
  return sweep.state() == v1::SWEEP_STATE_FINISHED || sweep.state() == v1::SWEEP_STATE_CANCELLED;
}

}  // namespace

bool IsTerminal(const std::ostream& out) { return &out == &std::cout && isatty(1) == 1; }

std::string FormatProgressLine(const v1::Sweep& sweep, double samples_per_second, int bar_width) {
  const v1::SweepCounts& c = sweep.counts();
  const int64_t closed = c.done() + c.failed() + c.cancelled();
  const double fraction =
      c.total() > 0 ? static_cast<double>(closed) / static_cast<double>(c.total()) : 0.0;
  const int filled = static_cast<int>(fraction * bar_width + 0.5);
  std::string line = absl::StrCat(
      sweep.name(), "  [", std::string(filled, '#'), std::string(bar_width - filled, '-'), "]  ",
      absl::StrFormat("%3d%%", static_cast<int>(fraction * 100)), "  done ", c.done(), "/",
      c.total(), "  running ", c.leased(), "  failed ", c.failed(), "  queued ", c.queued());
  if (c.cancelled() > 0) absl::StrAppend(&line, "  cancelled ", c.cancelled());
  if (c.preemptions() > 0) absl::StrAppend(&line, "  preempted ", c.preemptions());
  if (sweep.state() == v1::SWEEP_STATE_FINISHED) {
    absl::StrAppend(&line, "  finished");
  } else if (sweep.state() == v1::SWEEP_STATE_CANCELLED) {
    absl::StrAppend(&line, "  cancelled");
  } else if (samples_per_second > 0) {
    const double left = static_cast<double>(c.samples_total() - c.samples_done());
    absl::StrAppend(&line, absl::StrFormat("  %.1f samples/s  ETA %s", samples_per_second,
                                           ShortDuration(left / samples_per_second)));
  }
  return line;
}

ProgressDisplay::ProgressDisplay(std::ostream& out, bool terminal, Clock* clock,
                                 absl::Duration min_interval)
    : out_(out), terminal_(terminal), clock_(clock), min_interval_(min_interval) {}

double ProgressDisplay::Rate(const Track& t, const v1::Sweep& sweep) const {
  const double elapsed = absl::ToDoubleSeconds(clock_->Now() - t.first_seen);
  if (elapsed <= 0.5) return 0;
  return static_cast<double>(sweep.counts().samples_done() - t.first_samples) / elapsed;
}

void ProgressDisplay::Update(const v1::Sweep& sweep) {
  absl::MutexLock lock(&mu_);
  if (!notice_.empty()) SetNoticeLocked("");
  auto [it, inserted] = sweeps_.try_emplace(sweep.id());
  Track& t = it->second;
  if (inserted) {
    t.first_seen = clock_->Now();
    t.first_samples = sweep.counts().samples_done();
  }
  t.last = sweep;
  if (terminal_) {
    RedrawLocked();
    return;
  }
  const std::string counts = FormatProgressLine(sweep, 0, 20);
  const absl::Time now = clock_->Now();
  if (counts == t.printed) return;
  if (!Finished(sweep) && now - t.printed_at < min_interval_) return;
  t.printed = counts;
  t.printed_at = now;
  out_ << FormatProgressLine(sweep, Rate(t, sweep), 20) << "\n" << std::flush;
}

void ProgressDisplay::Note(absl::string_view line) {
  absl::MutexLock lock(&mu_);
  while (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!terminal_) {
    out_ << line << "\n" << std::flush;
    return;
  }
  ClearLocked();
  out_ << line << "\n";
  RedrawLocked();
}

void ProgressDisplay::SetNotice(const std::string& text) {
  absl::MutexLock lock(&mu_);
  SetNoticeLocked(text);
}

void ProgressDisplay::SetNoticeLocked(const std::string& text) {
  if (!terminal_) {
    // Once when it starts (the first text is kept) and once when it is over.
    if (notice_.empty() && !text.empty()) {
      out_ << text << "\n" << std::flush;
      notice_ = text;
    } else if (!notice_.empty() && text.empty()) {
      out_ << notice_ << " ... back\n" << std::flush;
      notice_.clear();
    }
    return;
  }
  notice_ = text;
  RedrawLocked();
}

void ProgressDisplay::ClearLocked() {
  if (lines_drawn_ > 0) out_ << "\x1b[" << lines_drawn_ << "A\r\x1b[J";
  lines_drawn_ = 0;
}

void ProgressDisplay::RedrawLocked() {
  ClearLocked();
  for (const auto& [id, t] : sweeps_) {
    out_ << "\r\x1b[2K" << FormatProgressLine(t.last, Rate(t, t.last), 30) << "\n";
    ++lines_drawn_;
  }
  if (!notice_.empty()) {
    out_ << "\r\x1b[2K" << notice_ << "\n";
    ++lines_drawn_;
  }
  out_ << std::flush;
}

}  // namespace sf::cli
