// The fixture of the multi-process fault tests (fault_test.cc, chaos_test.cc): the real
// sf-coordinator and sf-test-worker binaries on loopback, submitted and watched through
// sfctl's code, and the database read back to check every sample arrived exactly once.
// The binaries' paths come from SF_COORDINATOR_BIN and SF_TEST_WORKER_BIN.
#ifndef SF_TESTS_TESTING_FAULT_FIXTURE_H_
#define SF_TESTS_TESTING_FAULT_FIXTURE_H_

#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/progress.h"
#include "cli/remote.h"
#include "cli/sweep_ops.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "coordinator/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"
#include "tests/testing/process.h"
#include "worker/testing/test_evaluator.h"

namespace sf::testing {

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = sf::testing::FreshTestDir();
    db_ = (dir_ / "coordinator.db").string();
  }

  // Starts sf-coordinator on `port` (0 = any free one) and returns the port it serves.
  int StartCoordinator(int port = 0, const std::vector<std::string>& extra_flags = {}) {
    std::vector<std::string> argv = {SF_COORDINATOR_BIN,
                                     "--db",
                                     db_,
                                     "--listen",
                                     absl::StrCat("127.0.0.1:", port),
                                     "--lease-ttl",
                                     "2s",
                                     "--backoff",
                                     "200ms",
                                     "--max-lease-wait",
                                     "1s"};
    argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
    coordinator_ = Process::Start(argv, (dir_ / "coordinator.log").string());
    EXPECT_NE(coordinator_, nullptr);
    const int bound = coordinator_ ? coordinator_->ReadPort(absl::Seconds(20)) : -1;
    EXPECT_GT(bound, 0) << "sf-coordinator did not start; see " << (dir_ / "coordinator.log");
    if (!remote_ && bound > 0) {
      ConnectionOptions c;
      c.address = absl::StrCat("127.0.0.1:", bound);
      remote_ = std::make_unique<cli::Remote>(MakeCoordinatorChannel(c), c.address, "",
                                              absl::Seconds(10));
    }
    return bound;
  }

  std::unique_ptr<Process> StartWorker(const std::string& id, int port, int sample_ms) {
    return Process::Start({SF_TEST_WORKER_BIN, "--coordinator", absl::StrCat("127.0.0.1:", port),
                           "--worker-id", id, "--outbox", (dir_ / (id + ".outbox")).string(),
                           "--sample-ms", absl::StrCat(sample_ms), "--lease-wait", "1"},
                          (dir_ / (id + ".log")).string());
  }

  int64_t Submit(const v1::SubmitSweepRequest& request) {
    std::ostringstream out, err;
    std::istringstream in;
    cli::Io io{in, out, err};
    auto response = cli::Submit(*remote_, request, io);
    EXPECT_THAT(response, ::sf::testing::IsOk());
    return response.ok() ? response->sweep_id() : 0;
  }

  // Blocks on the sweep's event stream until an event shows at least `samples` samples
  // stored; no polling, no sleeping. Events are replayed from the start, each with the
  // counts of when it is read, so a sweep already past `samples` returns at its first
  // event. Call it while the coordinator serves: a stream that ends first (coordinator
  // gone, sweep over) or two minutes without reaching `samples` fail the test.
  void AwaitSamples(int64_t sweep_id, int64_t samples) {
    grpc::ClientContext context;
    remote_->Prepare(&context, absl::Minutes(2), /*wait_for_ready=*/true);
    v1::WatchSweepRequest request;
    request.set_sweep_id(sweep_id);
    auto reader = remote_->stub().WatchSweep(&context, request);
    v1::SweepEvent event;
    int64_t seen = 0;
    while (reader->Read(&event)) {
      // Only the last event of a batch carries the counts.
      if (event.has_counts()) seen = event.counts().samples_done();
      if (seen >= samples) {
        context.TryCancel();
        reader->Finish().IgnoreError();
        return;
      }
    }
    const grpc::Status status = reader->Finish();
    ADD_FAILURE() << "sweep " << sweep_id << " never reached " << samples << " samples (last seen "
                  << seen << "; stream ended: " << status.error_message() << ")";
  }

  v1::Sweep WaitFinished(int64_t sweep_id, std::string* progress_out = nullptr) {
    std::ostringstream progress;
    cli::ProgressDisplay display(progress, false, &RealClock(), absl::ZeroDuration());
    cli::WatchOptions options;
    options.reconnect_limit = absl::Seconds(30);
    cli::ShowWatchNotes(&display, &options);  // as sfctl watch: failures, "reconnecting"
    auto sweep = cli::WatchUntilDone(*remote_, sweep_id, display, options, &RealClock());
    EXPECT_THAT(sweep, ::sf::testing::IsOk());
    if (progress_out) *progress_out = progress.str();
    return sweep.value_or(v1::Sweep());
  }

  void ExpectExactlyOnce(int jobs, int samples) {
    const DbContents db = ReadDb(db_);
    EXPECT_EQ(db.sample_rows, int64_t{jobs} * samples);
    EXPECT_EQ(db.result_rows, jobs);
    for (int j = 0; j < jobs; ++j) {
      const std::string key = TestKey(j);
      ASSERT_TRUE(db.samples.contains(key)) << key;
      EXPECT_EQ(db.samples.at(key).size(), static_cast<size_t>(samples)) << key;
      for (const auto& [index, score] : db.samples.at(key)) {
        EXPECT_EQ(score, worker::testing::TestScore(key, index)) << key << " #" << index;
      }
    }
  }

  std::filesystem::path dir_;
  std::string db_;
  std::unique_ptr<Process> coordinator_;
  std::unique_ptr<cli::Remote> remote_;
};

}  // namespace sf::testing

#endif  // SF_TESTS_TESTING_FAULT_FIXTURE_H_
