// Built only with SF_TSAN: checks that ThreadSanitizer sees abseil's synchronization. The
// process must load the abseil the build compiled with TSan (cmake/build-tsan-abseil.sh);
// with Debian's uninstrumented abseil, TSan cannot see absl::Mutex, absl::CondVar or
// absl::Notification order the accesses below, reports each as a data race and the test
// exits with TSan's status 66.
#include <link.h>

#include <cstdint>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf {
namespace {

// The path of the loaded object whose name contains `name`, or "" if none is loaded.
std::string LoadedObjectPath(const std::string& name) {
  struct Search {
    const std::string* name;
    std::string path;
  } search{&name, ""};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        auto* s = static_cast<Search*>(data);
        const std::string path = info->dlpi_name ? info->dlpi_name : "";
        if (path.find(*s->name) == std::string::npos) return 0;
        s->path = path;
        return 1;
      },
      &search);
  return search.path;
}

TEST(TsanAbseil, ProcessLoadsTheAbseilBuiltWithTsan) {
  EXPECT_THAT(LoadedObjectPath("libabsl_synchronization.so"),
              ::testing::StartsWith(SF_TSAN_ABSEIL_LIBDIR "/"));
}

TEST(TsanAbseil, MutexOrdersWritesOfTwoThreads) {
  absl::Mutex mu;
  int64_t counter = 0;  // guarded by mu
  auto add = [&] {
    for (int i = 0; i < 1000; ++i) {
      absl::MutexLock lock(&mu);
      ++counter;
    }
  };
  std::thread a(add), b(add);
  a.join();
  b.join();
  EXPECT_EQ(counter, 2000);
}

TEST(TsanAbseil, AwaitOrdersTheWriteBeforeTheConditionHolds) {
  absl::Mutex mu;
  bool ready = false;  // guarded by mu
  int value = 0;       // written before ready, read after it
  std::thread writer([&] {
    value = 42;
    absl::MutexLock lock(&mu);
    ready = true;
  });
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&ready));
  }
  EXPECT_EQ(value, 42);
  writer.join();
}

TEST(TsanAbseil, NotificationOrdersTheWriteBeforeTheWait) {
  int value = 0;
  absl::Notification done;
  std::thread writer([&] {
    value = 7;
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_EQ(value, 7);
  writer.join();
}

}  // namespace
}  // namespace sf
