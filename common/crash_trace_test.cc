#include "common/crash_trace.h"

#include <csignal>

#include "gtest/gtest.h"

namespace sf {

// Outside any anonymous namespace and never inlined, so the trace can name it.
__attribute__((noinline)) void CrashTraceTestFaultHere(volatile int* p) { *p = 1; }

namespace {

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
TEST(CrashTraceDeathTest, SegfaultPrintsTheSignalAddressAndTheFaultingFunction) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        InstallCrashTrace("crash_trace_test");
        CrashTraceTestFaultHere(nullptr);
      },
      testing::KilledBySignal(SIGSEGV),
      "SIGSEGV at address 0x0+; stack of the thread that received it:.*CrashTraceTestFaultHere");
}

TEST(CrashTraceDeathTest, AbortIsReportedAndKeepsItsSignal) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        InstallCrashTrace("crash_trace_test");
        std::abort();
      },
      testing::KilledBySignal(SIGABRT), "\\*\\*\\* SIGABRT; stack of the thread");
}
#endif

}  // namespace
}  // namespace sf
