// A bounded chaos run with the real binaries on loopback: several hundred jobs while
// worker processes are SIGKILLed and restarted, the coordinator is SIGKILLed twice and
// SIGTERMed once, and the sweep is reopened with more jobs midway and watched to its end.
// Afterwards every job is done exactly once with every sample, the stored counters equal
// a recount, and the database passes integrity_check. The faults are the test's own:
// which worker dies is drawn from a fixed seed, and each fault is injected when the
// sweep's event stream shows a set number of samples stored (no sleeps, no polling), so
// every run injects the same faults in the same order (label `slow`).
#include <sqlite3.h>

#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/fault_fixture.h"

namespace sf {
namespace {

using ::sf::testing::FaultTest;
using ::sf::testing::Process;

constexpr int kFirstJobs = 300;
constexpr int kAllJobs = 400;  // after the sweep is reopened
constexpr int kSamples = 5;
constexpr int kWorkers = 3;
constexpr int kSampleMs = 8;

// One integer (or text) from the database through a read-only connection.
std::string QueryOne(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out = "<error>";
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(st, 0);
      out = text != nullptr ? reinterpret_cast<const char*>(text) : "<null>";
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

class ChaosTest : public FaultTest {
 protected:
  void RestartWorker(int i, int port) {
    workers_[i] = StartWorker(absl::StrCat("w", i), port, kSampleMs);
    ASSERT_NE(workers_[i], nullptr);
  }
  void KillWorker(int i, int port) {
    workers_[i]->Signal(SIGKILL);
    EXPECT_EQ(workers_[i]->Wait(), 128 + SIGKILL);
    ++worker_kills_;
    RestartWorker(i, port);
  }
  void RestartCoordinator(int port, int signal) {
    coordinator_->Signal(signal);
    EXPECT_EQ(coordinator_->Wait(), signal == SIGTERM ? 0 : 128 + signal);
    ASSERT_EQ(StartCoordinator(port), port);
  }

  std::vector<std::unique_ptr<Process>> workers_{kWorkers};
  int worker_kills_ = 0;
};

TEST_F(ChaosTest, KillsRestartsAndAReopenedSweep_EveryJobDoneOnceWithEverySample) {
  const absl::Time start = absl::Now();
  const int port = StartCoordinator();
  ASSERT_GT(port, 0);
  const int64_t sweep = Submit(testing::TestSweep("chaos", kFirstJobs, kSamples));
  for (int i = 0; i < kWorkers; ++i) RestartWorker(i, port);
  v1::Sweep watched;
  std::thread watcher([&] { watched = WaitFinished(sweep); });

  std::mt19937 random(20261207);
  auto victim = [&random] { return static_cast<int>(random() % kWorkers); };
  const int64_t first_total = int64_t{kFirstJobs} * kSamples;
  AwaitSamples(sweep, first_total / 10);
  KillWorker(victim(), port);
  AwaitSamples(sweep, first_total * 2 / 10);
  RestartCoordinator(port, SIGKILL);
  AwaitSamples(sweep, first_total * 3 / 10);
  // Reopen: the same sweep with more jobs; the watch must follow it to the new end.
  Submit(testing::TestSweep("chaos", kAllJobs, kSamples));
  AwaitSamples(sweep, first_total * 4 / 10);
  KillWorker(victim(), port);
  AwaitSamples(sweep, first_total * 5 / 10);
  RestartCoordinator(port, SIGTERM);
  AwaitSamples(sweep, first_total * 6 / 10);
  RestartCoordinator(port, SIGKILL);
  AwaitSamples(sweep, first_total * 7 / 10);
  KillWorker(victim(), port);
  watcher.join();
  const absl::Duration took = absl::Now() - start;

  EXPECT_EQ(watched.state(), v1::SWEEP_STATE_FINISHED);
  EXPECT_EQ(watched.counts().done(), kAllJobs);
  EXPECT_EQ(watched.counts().failed(), 0);
  ExpectExactlyOnce(kAllJobs, kSamples);
  // Done once: one JOB_DONE event per job.
  EXPECT_EQ(QueryOne(db_, "SELECT COUNT(*) FROM events WHERE kind=" +
                              std::to_string(v1::EVENT_KIND_JOB_DONE)),
            std::to_string(kAllJobs));
  EXPECT_EQ(QueryOne(db_, "SELECT COUNT(DISTINCT job_key) FROM events WHERE kind=" +
                              std::to_string(v1::EVENT_KIND_JOB_DONE)),
            std::to_string(kAllJobs));
  // The counters kept on every transition equal a recount from the rows.
  EXPECT_EQ(
      QueryOne(db_, "SELECT s.n_total = COUNT(*) AND s.n_done = SUM(j.state=" +
                        std::to_string(v1::JOB_STATE_DONE) +
                        ") AND s.n_queued = SUM(j.state=" + std::to_string(v1::JOB_STATE_QUEUED) +
                        ") AND s.n_leased = SUM(j.state=" + std::to_string(v1::JOB_STATE_LEASED) +
                        ") AND s.samples_done = SUM(j.samples_done) AND s.samples_done = "
                        "(SELECT COUNT(*) FROM samples) FROM sweeps s JOIN sweep_jobs sj ON "
                        "sj.sweep_id = s.id JOIN jobs j ON j.id = sj.job_id GROUP BY s.id"),
      "1");
  EXPECT_EQ(QueryOne(db_, "PRAGMA integrity_check"), "ok");
  std::printf(
      "chaos: %d jobs x %d samples, %d worker SIGKILLs, 2 coordinator SIGKILLs, "
      "1 coordinator SIGTERM, 1 reopen; %s\n",
      kAllJobs, kSamples, worker_kills_, absl::FormatDuration(took).c_str());
  for (auto& w : workers_) {
    EXPECT_TRUE(w->Running());
    w->Signal(SIGTERM);
    EXPECT_EQ(w->Wait(), 0);
  }
}

}  // namespace
}  // namespace sf
