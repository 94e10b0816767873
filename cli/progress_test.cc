// The progress display: plain lines off a terminal, in-place redraw on one, and notes
// (log lines, failure reasons) and notices (reconnecting) that never break the bars.
#include "cli/progress.h"

#include <sstream>

#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf::cli {
namespace {

using ::testing::HasSubstr;

v1::Sweep MakeSweep(int64_t done, int64_t total) {
  v1::Sweep sweep;
  sweep.set_id(1);
  sweep.set_name("demo");
  sweep.set_state(v1::SWEEP_STATE_RUNNING);
  sweep.mutable_counts()->set_total(total);
  sweep.mutable_counts()->set_done(done);
  sweep.mutable_counts()->set_queued(total - done);
  return sweep;
}

TEST(ProgressDisplay, Plain_NotesAndNoticesArePrintedOnce) {
  std::ostringstream out;
  FakeClock clock;
  ProgressDisplay display(out, /*terminal=*/false, &clock, absl::ZeroDuration());
  display.Update(MakeSweep(1, 4));
  display.Note("job abc failed: boom\n");
  display.SetNotice("coordinator unreachable for 2s; reconnecting");
  display.SetNotice("coordinator unreachable for 4s; reconnecting");
  display.Update(MakeSweep(2, 4));
  const std::string text = out.str();
  EXPECT_THAT(text, HasSubstr("done 1/4"));
  EXPECT_THAT(text, HasSubstr("job abc failed: boom\n"));
  EXPECT_THAT(text, HasSubstr("unreachable for 2s; reconnecting\n"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("for 4s")));  // once per outage
  EXPECT_THAT(text, HasSubstr("reconnecting ... back\n"));
  EXPECT_THAT(text, HasSubstr("done 2/4"));
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
}

TEST(ProgressDisplay, Terminal_NoteGoesAboveTheRedrawnBars) {
  std::ostringstream out;
  FakeClock clock;
  ProgressDisplay display(out, /*terminal=*/true, &clock);
  display.Update(MakeSweep(1, 4));
  const size_t before = out.str().size();
  display.Note("W log line\n");
  const std::string after = out.str().substr(before);
  // Up one line (the bar), clear to the end, the note, then the bar again below it.
  EXPECT_EQ(after.rfind("\x1b[1A\r\x1b[J", 0), 0u) << after;
  const size_t note = after.find("W log line\n");
  const size_t bar = after.find("done 1/4");
  ASSERT_NE(note, std::string::npos);
  ASSERT_NE(bar, std::string::npos);
  EXPECT_LT(note, bar);
  display.SetNotice("reconnecting");
  EXPECT_THAT(out.str().substr(before), HasSubstr("reconnecting\n"));
}

}  // namespace
}  // namespace sf::cli
