#include "worker/model/thread_pool.h"

#include <atomic>
#include <vector>

#include "gtest/gtest.h"

namespace sf::model {
namespace {

TEST(ThreadPool, ParallelFor_CoversEveryIndexOnce) {
  ThreadPool pool(4);
  EXPECT_EQ(pool.num_threads(), 4);
  for (int64_t n : {1, 7, 64, 1000}) {
    for (int64_t grain : {1, 3, 64}) {
      for (int rep = 0; rep < 20; ++rep) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.ParallelFor(n, grain, [&](int64_t begin, int64_t end) {
          EXPECT_LE(end - begin, grain);
          for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)]++;
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << i;
      }
    }
  }
  pool.ParallelFor(0, 1, [](int64_t, int64_t) { FAIL() << "called for n = 0"; });
}

TEST(ThreadPool, SingleThread_RunsInline) {
  ThreadPool pool(1);
  int64_t total = 0;
  pool.ParallelFor(10, 3, [&](int64_t begin, int64_t end) { total += end - begin; });
  EXPECT_EQ(total, 10);
}

}  // namespace
}  // namespace sf::model
