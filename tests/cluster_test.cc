// In-process cluster: a coordinator served over loopback gRPC and several workers with
// the deterministic test evaluator. Checks that every sample of every job is stored
// exactly once, that a released job resumes at the next sample elsewhere, and that
// duplicate, out-of-order and late reports never double-count.
#include "tests/testing/cluster.h"

#include <atomic>
#include <sstream>
#include <thread>

#include "absl/synchronization/notification.h"
#include "cli/progress.h"
#include "cli/read_source.h"
#include "cli/remote.h"
#include "cli/sweep_ops.h"
#include "common/testing/status_matchers.h"
#include "coordinator/client.h"
#include "coordinator/scheduler.h"
#include "coordinator/service.h"
#include "coordinator/testing/test_jobs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/outbox.h"
#include "worker/testing/test_evaluator.h"
#include "worker/worker.h"
#include "worker/worker_client.h"

namespace sf {
namespace {

using ::sf::testing::IsOk;
using ::sf::testing::ReadDb;
using ::sf::testing::TestKey;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;
using worker::testing::TestEvaluator;
using worker::testing::TestEvaluatorOptions;
using worker::testing::TestScore;

struct LocalWorker {
  std::unique_ptr<TestEvaluator> evaluator;
  std::unique_ptr<worker::Outbox> outbox;
  std::unique_ptr<worker::WorkerClient> client;
  std::unique_ptr<worker::Worker> worker;
  std::thread thread;
  absl::Status status;
};

class ClusterTest : public ::testing::Test {
 protected:
  void StartCoordinator(Clock* clock, coordinator::SchedulerOptions options = {}) {
    options.max_lease_wait = absl::Milliseconds(500);
    auto scheduler = coordinator::Scheduler::Open(db_.path(), clock, options);
    ASSERT_THAT(scheduler, IsOk());
    scheduler_ = std::move(*scheduler);
    auto server = coordinator::CoordinatorServer::Start(scheduler_.get(), {});
    ASSERT_THAT(server, IsOk());
    server_ = std::move(*server);
    ConnectionOptions connection;
    connection.address = absl::StrCat("127.0.0.1:", server_->port());
    channel_ = MakeCoordinatorChannel(connection);
    remote_ = std::make_unique<cli::Remote>(channel_, connection.address, "", absl::Seconds(10));
  }

  LocalWorker* AddWorker(const std::string& id, TestEvaluatorOptions eval = {}) {
    auto w = std::make_unique<LocalWorker>();
    w->evaluator = std::make_unique<TestEvaluator>(eval);
    w->outbox = *worker::Outbox::Open(":memory:");
    w->client = worker::NewGrpcWorkerClient(channel_, {});
    worker::WorkerOptions options;
    options.worker_id = id;
    options.hostname = "localhost";
    options.lease_wait = absl::Milliseconds(300);
    w->worker = std::make_unique<worker::Worker>(options, w->client.get(), w->evaluator.get(),
                                                 w->outbox.get(), &RealClock());
    LocalWorker* raw = w.get();
    w->thread = std::thread([raw] { raw->status = raw->worker->Run(); });
    workers_.push_back(std::move(w));
    return raw;
  }

  static void StopWorker(LocalWorker* w) {
    w->worker->Stop(worker::StopMode::kRelease);
    if (w->thread.joinable()) w->thread.join();
    EXPECT_THAT(w->status, IsOk());
  }

  void TearDown() override {
    for (auto& w : workers_) {
      if (w->thread.joinable()) StopWorker(w.get());
    }
    if (server_) {
      server_->Shutdown(absl::Seconds(1));
      server_->Wait();
    }
  }

  int64_t Submit(const v1::SubmitSweepRequest& request) {
    std::ostringstream out, err;
    std::istringstream in;
    cli::Io io{in, out, err};
    auto response = cli::Submit(*remote_, request, io);
    EXPECT_THAT(response, IsOk());
    return response.ok() ? response->sweep_id() : 0;
  }

  // Follows the sweep with sfctl's watch loop until it finishes.
  v1::Sweep WaitFinished(int64_t sweep_id) {
    std::ostringstream progress;
    cli::ProgressDisplay display(progress, false, &RealClock(), absl::ZeroDuration());
    auto sweep = cli::WatchUntilDone(*remote_, sweep_id, display, {}, &RealClock());
    EXPECT_THAT(sweep, IsOk());
    EXPECT_THAT(progress.str(), ::testing::HasSubstr("finished"));
    return sweep.value_or(v1::Sweep());
  }

  // Every job's samples are exactly 0..samples-1 with the evaluator's scores.
  void ExpectExactlyOnce(int jobs, int samples) {
    const testing::DbContents db = ReadDb(db_.path());
    EXPECT_EQ(db.sample_rows, int64_t{jobs} * samples);
    EXPECT_EQ(db.result_rows, jobs);
    for (int j = 0; j < jobs; ++j) {
      const std::string key = TestKey(j);
      ASSERT_TRUE(db.samples.contains(key)) << key;
      const auto& s = db.samples.at(key);
      ASSERT_EQ(s.size(), static_cast<size_t>(samples)) << key;
      for (const auto& [index, score] : s) EXPECT_EQ(score, TestScore(key, index));
      EXPECT_TRUE(db.result_n.contains(key)) << key;
    }
  }

  coordinator::testing::TempDb db_;
  std::unique_ptr<coordinator::Scheduler> scheduler_;
  std::unique_ptr<coordinator::CoordinatorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<cli::Remote> remote_;
  std::vector<std::unique_ptr<LocalWorker>> workers_;
};

TEST_F(ClusterTest, ThreeWorkers_EveryJobRunsOnceWithEverySample) {
  StartCoordinator(&RealClock());
  for (int i = 0; i < 3; ++i) AddWorker(absl::StrCat("w", i));
  const int64_t sweep = Submit(testing::TestSweep("three", 24, 5));
  const v1::Sweep done = WaitFinished(sweep);
  EXPECT_EQ(done.counts().done(), 24);
  EXPECT_EQ(done.counts().failed(), 0);
  ExpectExactlyOnce(24, 5);
  // The sweep finishes when the coordinator commits the last Complete, before that
  // worker has seen the reply and counted it: stop (join) the workers so that their
  // counters are final, instead of racing the last reply.
  int64_t completed = 0;
  for (auto& w : workers_) {
    StopWorker(w.get());
    completed += w->worker->stats().jobs_completed;
  }
  EXPECT_EQ(completed, 24);
}

TEST_F(ClusterTest, Resubmit_ReusesFinishedJobs) {
  StartCoordinator(&RealClock());
  AddWorker("w0");
  WaitFinished(Submit(testing::TestSweep("again", 4, 3)));
  std::ostringstream out, err;
  std::istringstream in;
  cli::Io io{in, out, err};
  auto response = cli::Submit(*remote_, testing::TestSweep("again", 4, 3), io);
  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->jobs_queued(), 0);
  EXPECT_EQ(response->jobs_reused(), 4);
  EXPECT_THAT(out.str(), ::testing::HasSubstr("(0 new, 4 reused)"));
}

TEST_F(ClusterTest, WatchReopenedSweep_FollowsItToTheNewEndNotAnOldOne) {
  StartCoordinator(&RealClock());
  LocalWorker* first = AddWorker("w0");
  WaitFinished(Submit(testing::TestSweep("reopen", 2, 3)));
  StopWorker(first);
  // Resubmitting with more jobs reopens the sweep; its history holds a SWEEP_FINISHED.
  const int64_t sweep = Submit(testing::TestSweep("reopen", 4, 3));
  std::ostringstream progress;
  cli::ProgressDisplay display(progress, false, &RealClock(), absl::ZeroDuration());
  absl::StatusOr<v1::Sweep> watched;
  std::thread watcher(
      [&] { watched = cli::WatchUntilDone(*remote_, sweep, display, {}, &RealClock()); });
  AddWorker("w1");
  watcher.join();
  ASSERT_THAT(watched, IsOk());
  EXPECT_EQ(watched->state(), v1::SWEEP_STATE_FINISHED);
  EXPECT_EQ(watched->counts().done(), 4);
  auto now = remote_->FindSweep("reopen");
  ASSERT_THAT(now, IsOk());
  EXPECT_EQ(now->counts().done(), 4);
  EXPECT_EQ(now->counts().queued() + now->counts().leased(), 0);
}

TEST_F(ClusterTest, QueryStoppedByALimit_SaysSoWithItsOwnExitCode) {
  StartCoordinator(&RealClock());
  bool truncated = false;
  std::unique_ptr<cli::ReadSource> source = cli::CoordinatorSource(remote_.get());
  auto slow = cli::RunQuery(*source,
                            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "
                            "SELECT COUNT(*) FROM c",
                            0, /*timeout_ms=*/100, &truncated);
  ASSERT_FALSE(slow.ok());
  EXPECT_THAT(slow.status().message(), ::testing::HasSubstr("time limit"));
  EXPECT_THAT(slow.status().message(), ::testing::Not(::testing::HasSubstr("not reachable")));
  EXPECT_EQ(cli::ExitCodeFor(slow.status()), cli::kExitLimit);
  // A refused query is not a token problem.
  auto write = cli::RunQuery(*source, "DELETE FROM jobs", 0, 0, &truncated);
  ASSERT_FALSE(write.ok());
  EXPECT_EQ(write.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(write.status().message(), ::testing::Not(::testing::HasSubstr("--token-file")));
}

TEST_F(ClusterTest, WorkerReleasedMidJob_AnotherResumesAtTheNextSample) {
  StartCoordinator(&RealClock());
  absl::Notification reached, open;
  std::atomic<bool> saw_cancel{false};
  TestEvaluatorOptions gated;
  gated.before_sample = [&](const JobSpec&, int32_t i, const worker::CancelFlag& cancel) {
    if (i != 6) return;
    reached.Notify();
    open.WaitForNotification();
    // As an evaluator inside a long sample would, notice the cancellation here. The
    // worker sets the flag on its own thread after Stop(): poll for that condition;
    // the deadline only turns a hang into a failure.
    const absl::Time guard = absl::Now() + absl::Minutes(2);
    while (!cancel.cancelled() && absl::Now() < guard) absl::SleepFor(absl::Milliseconds(1));
    saw_cancel = cancel.cancelled();
  };
  LocalWorker* first = AddWorker("first", gated);
  const int64_t sweep = Submit(testing::TestSweep("resume", 1, 20));
  reached.WaitForNotification();
  first->worker->Stop(worker::StopMode::kRelease);
  open.Notify();
  first->thread.join();
  ASSERT_THAT(first->status, IsOk());
  EXPECT_TRUE(saw_cancel.load());
  EXPECT_EQ(first->worker->stats().jobs_released, 1);
  EXPECT_EQ(first->evaluator->samples_evaluated(), 6);

  LocalWorker* second = AddWorker("second");
  const v1::Sweep done = WaitFinished(sweep);
  EXPECT_EQ(done.counts().done(), 1);
  EXPECT_EQ(done.counts().preemptions(), 1);
  EXPECT_EQ(done.counts().failed(), 0);
  EXPECT_EQ(second->evaluator->samples_evaluated(), 14);  // resumed at sample 6
  ExpectExactlyOnce(1, 20);
}

// The worker-facing service driven by hand: what a confused or slow worker could send.
class RawWorkerTest : public ClusterTest {
 protected:
  void SetUp() override {
    coordinator::SchedulerOptions options;
    options.lease_ttl = absl::Seconds(30);
    options.backoff_base = absl::Seconds(1);
    StartCoordinator(&clock_, options);
    stub_ = v1::WorkerService::NewStub(channel_);
    for (const char* id : {"a", "b"}) {
      grpc::ClientContext context;
      v1::RegisterWorkerResponse response;
      ASSERT_TRUE(
          stub_->RegisterWorker(&context, coordinator::testing::MakeWorker(id), &response).ok());
    }
  }
  v1::Lease LeaseFor(const std::string& worker_id) {
    grpc::ClientContext context;
    v1::LeaseRequest request;
    request.set_worker_id(worker_id);
    v1::LeaseResponse response;
    grpc::Status s = stub_->Lease(&context, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(response.has_lease());
    return response.lease();
  }
  grpc::Status Report(const std::string& token, std::vector<int> indices,
                      v1::ReportSamplesResponse* response, const std::string& key) {
    grpc::ClientContext context;
    v1::ReportSamplesRequest request;
    request.set_lease_token(token);
    for (int i : indices) {
      *request.add_samples() = coordinator::testing::MakeSample(i, TestScore(key, i));
    }
    return stub_->ReportSamples(&context, request, response);
  }
  grpc::Status Complete(const std::string& token, int n) {
    grpc::ClientContext context;
    v1::CompleteRequest request;
    request.set_lease_token(token);
    request.mutable_result()->set_metric("accuracy");
    request.mutable_result()->set_n(n);
    v1::CompleteResponse response;
    return stub_->Complete(&context, request, &response);
  }

  FakeClock clock_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
};

TEST_F(RawWorkerTest, DuplicateAndOutOfOrderReports_StoredOnce) {
  const int64_t sweep = Submit(testing::TestSweep("dups", 1, 4));
  const v1::Lease lease = LeaseFor("a");
  const std::string key = TestKey(0);
  v1::ReportSamplesResponse r1, r2, r3;
  ASSERT_TRUE(Report(lease.lease_token(), {3, 1}, &r1, key).ok());
  EXPECT_THAT(r1.accepted(), UnorderedElementsAre(3, 1));
  ASSERT_TRUE(Report(lease.lease_token(), {1, 0, 3, 2}, &r2, key).ok());
  EXPECT_THAT(r2.accepted(), UnorderedElementsAre(0, 2));
  EXPECT_THAT(r2.duplicates(), UnorderedElementsAre(1, 3));
  ASSERT_TRUE(Report(lease.lease_token(), {2, 2}, &r3, key).ok());  // a retried call
  EXPECT_THAT(r3.accepted(), ElementsAre());
  ASSERT_TRUE(Complete(lease.lease_token(), 4).ok());
  EXPECT_FALSE(Complete(lease.lease_token(), 4).ok());  // a repeated Complete is refused
  ExpectExactlyOnce(1, 4);
  (void)sweep;
}

TEST_F(RawWorkerTest, LateReportFromExpiredLease_RejectedAndNeverCounted) {
  Submit(testing::TestSweep("late", 1, 4));
  const std::string key = TestKey(0);
  const v1::Lease slow = LeaseFor("a");
  v1::ReportSamplesResponse r;
  ASSERT_TRUE(Report(slow.lease_token(), {0}, &r, key).ok());
  clock_.Advance(absl::Seconds(31));  // the lease expires...
  clock_.Advance(absl::Seconds(5));   // ...and the re-queue backoff passes
  const v1::Lease fresh = LeaseFor("b");
  ASSERT_NE(fresh.lease_token(), slow.lease_token());
  EXPECT_THAT(fresh.samples_done(), ElementsAre(0));  // resumes after the stored sample

  v1::ReportSamplesResponse late;
  grpc::Status s = Report(slow.lease_token(), {1, 2}, &late, key);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Complete(slow.lease_token(), 4).error_code(), grpc::StatusCode::ABORTED);

  ASSERT_TRUE(Report(fresh.lease_token(), {1, 2, 3}, &r, key).ok());
  EXPECT_THAT(r.accepted(), UnorderedElementsAre(1, 2, 3));
  ASSERT_TRUE(Complete(fresh.lease_token(), 4).ok());
  ExpectExactlyOnce(1, 4);
}

}  // namespace
}  // namespace sf
