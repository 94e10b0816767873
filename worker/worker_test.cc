#include "worker/worker.h"

#include <sqlite3.h>

#include <filesystem>
#include <thread>

#include "absl/synchronization/notification.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/version.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/engine_evaluator.h"
#include "worker/testing/fake_worker_client.h"
#include "worker/testing/stepping_clock.h"
#include "worker/testing/test_evaluator.h"

namespace sf::worker {
namespace {

using ::sf::testing::IsOk;
using ::testing::ElementsAre;
using testing::FakeWorkerClient;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::SteppingClock;
using testing::TestEvaluator;
using testing::TestEvaluatorOptions;
using testing::TestScore;
using State = FakeWorkerClient::State;

// A gate the evaluator waits at before sample `at` until the test opens it.
struct Gate {
  int32_t at = -1;
  absl::Notification reached;
  absl::Notification open;
  // Also hold the sample until the worker has cancelled the job, as an evaluator in
  // the middle of a long sample would notice it.
  bool until_cancelled = false;
  void Hook(const JobSpec&, int32_t index, const CancelFlag& cancel) {
    if (index != at) return;
    reached.Notify();
    open.WaitForNotification();
    while (until_cancelled && !cancel.cancelled()) absl::SleepFor(absl::Milliseconds(1));
  }
};

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SF_ASSERT_OK_AND_ASSIGN(outbox_, Outbox::Open(":memory:"));
    options_.worker_id = "w1";
    options_.hostname = "host";
    options_.engine_version = "sf-engine-test";
    v1::Device device;
    device.set_index(0);
    device.set_name("Test GPU");
    device.set_memory_bytes(80LL << 30);
    options_.devices.push_back(device);
  }

  void MakeWorker(TestEvaluatorOptions eval_options = {}) {
    if (gate_.at >= 0) {
      eval_options.before_sample = [this](const JobSpec& j, int32_t i, const CancelFlag& c) {
        gate_.Hook(j, i, c);
      };
    }
    evaluator_ = std::make_unique<TestEvaluator>(eval_options);
    worker_ =
        std::make_unique<Worker>(options_, &client_, evaluator_.get(), outbox_.get(), &clock_);
  }
  void Start() {
    thread_ = std::thread([this] { run_status_ = worker_->Run(); });
  }
  void Join() {
    thread_.join();
    EXPECT_THAT(run_status_, IsOk());
  }
  std::vector<int32_t> Stored(const std::string& token) {
    return client_.Inspect<std::vector<int32_t>>([&](const State& s) {
      std::vector<int32_t> out;
      auto it = s.stored.find(token);
      if (it != s.stored.end()) {
        for (const auto& [i, sample] : it->second) out.push_back(i);
      }
      return out;
    });
  }
  int64_t Pending() {
    auto n = outbox_->PendingCount();
    EXPECT_THAT(n, IsOk());
    return n.value_or(-1);
  }

  WorkerOptions options_;
  FakeWorkerClient client_;
  SteppingClock clock_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<TestEvaluator> evaluator_;
  std::unique_ptr<Worker> worker_;
  Gate gate_;
  std::thread thread_;
  absl::Status run_status_;
};

TEST_F(WorkerTest, Run_RegistersDevicesAndCapabilities) {
  options_.max_jobs = 1;
  client_.Mutate([](State& s) { s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 1)); });
  MakeWorker({.methods = {"dense", "quest"}});
  ASSERT_THAT(worker_->Run(), IsOk());
  const auto reg =
      client_.Inspect<v1::RegisterWorkerRequest>([](const State& s) { return s.registers.at(0); });
  EXPECT_EQ(reg.worker_id(), "w1");
  EXPECT_EQ(reg.hostname(), "host");
  ASSERT_EQ(reg.devices_size(), 1);
  EXPECT_EQ(reg.devices(0).name(), "Test GPU");
  EXPECT_THAT(reg.methods(), ElementsAre("dense", "quest"));
  EXPECT_THAT(reg.backends(), ElementsAre("test"));
  EXPECT_EQ(reg.engine_version(), "sf-engine-test");
}

TEST_F(WorkerTest, Run_UnderSlurm_RegistersJobIdAndNode) {
  options_.max_jobs = 1;
  options_.slurm_job_id = "77_1";
  options_.slurm_node = "node3";
  client_.Mutate([](State& s) { s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 1)); });
  MakeWorker();
  ASSERT_THAT(worker_->Run(), IsOk());
  const auto reg =
      client_.Inspect<v1::RegisterWorkerRequest>([](const State& s) { return s.registers.at(0); });
  EXPECT_EQ(reg.slurm_job_id(), "77_1");
  EXPECT_EQ(reg.slurm_node(), "node3");
}

TEST_F(WorkerTest, Run_Lease_ReportsEverySampleThenCompletes) {
  options_.max_jobs = 1;
  client_.Mutate([](State& s) { s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 6)); });
  MakeWorker();
  ASSERT_THAT(worker_->Run(), IsOk());
  EXPECT_THAT(Stored("t"), ElementsAre(0, 1, 2, 3, 4, 5));
  const auto completes =
      client_.Inspect<std::vector<v1::CompleteRequest>>([](const State& s) { return s.completes; });
  ASSERT_EQ(completes.size(), 1u);
  double mean = 0;
  for (int i = 0; i < 6; ++i) mean += TestScore("k", i) / 6;
  EXPECT_EQ(completes[0].result().n(), 6);
  EXPECT_DOUBLE_EQ(completes[0].result().mean(), mean);
  EXPECT_EQ(completes[0].result().engine_version(), "sf-engine-test");
  EXPECT_EQ(completes[0].result().git_commit(), kGitCommit);
  EXPECT_EQ(completes[0].result().samples_evaluated(), 6);
  EXPECT_FALSE(completes[0].result().has_model_shape());  // the test evaluator knows none
  client_.Inspect<bool>([](const State& s) {
    for (const auto& [i, sample] : s.stored.at("t")) EXPECT_EQ(sample.score(), TestScore("k", i));
    return true;
  });
  EXPECT_EQ(Pending(), 0);
  SF_ASSERT_OK_AND_ASSIGN(auto leases, outbox_->Leases());
  EXPECT_THAT(leases, IsEmpty());
  EXPECT_EQ(worker_->stats().jobs_completed, 1);
  EXPECT_EQ(worker_->stats().samples_sent, 6);
}

std::vector<int32_t> Indices(const google::protobuf::RepeatedPtrField<v1::SampleResult>& samples) {
  std::vector<int32_t> out;
  for (const v1::SampleResult& s : samples) out.push_back(s.index());
  return out;
}

TEST_F(WorkerTest, Run_SamplesPendingAtTheEnd_RideWithComplete) {
  // ReportSamples is unavailable while the job runs (far more errors than the loop
  // can use up), so every sample is still pending when the evaluation ends.
  options_.max_jobs = 1;
  client_.Mutate([](State& s) {
    s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 6));
    for (int i = 0; i < 200; ++i) {
      s.errors["ReportSamples"].push_back(absl::UnavailableError("down"));
    }
  });
  MakeWorker();
  ASSERT_THAT(worker_->Run(), IsOk());
  client_.Inspect<bool>([](const State& s) {
    EXPECT_THAT(s.reports, IsEmpty());  // no separate call for the last samples
    EXPECT_EQ(s.completes.size(), 1u);
    if (s.completes.empty()) return false;
    EXPECT_THAT(Indices(s.completes[0].samples()), ElementsAre(0, 1, 2, 3, 4, 5));
    for (const v1::SampleResult& sample : s.completes[0].samples()) {
      EXPECT_EQ(sample.score(), TestScore("k", sample.index()));
    }
    EXPECT_EQ(s.completes[0].result().n(), 6);
    return true;
  });
  EXPECT_THAT(Stored("t"), ElementsAre(0, 1, 2, 3, 4, 5));
  EXPECT_EQ(Pending(), 0);
  EXPECT_EQ(worker_->stats().samples_sent, 6);
  EXPECT_EQ(worker_->stats().jobs_completed, 1);
}

TEST_F(WorkerTest, Run_MoreThanABatchPendingAtTheEnd_RestReportedFirstLastBatchWithComplete) {
  options_.max_jobs = 1;
  options_.report_batch = 2;
  client_.Mutate([](State& s) {
    s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 5));
    for (int i = 0; i < 200; ++i) {
      s.errors["ReportSamples"].push_back(absl::UnavailableError("down"));
    }
  });
  MakeWorker();
  ASSERT_THAT(worker_->Run(), IsOk());
  client_.Inspect<bool>([](const State& s) {
    std::vector<int32_t> reported;
    for (const v1::ReportSamplesRequest& r : s.reports) {
      EXPECT_LE(r.samples_size(), 2);
      for (int32_t i : Indices(r.samples())) reported.push_back(i);
    }
    EXPECT_THAT(reported, ElementsAre(0, 1, 2));
    EXPECT_EQ(s.completes.size(), 1u);
    if (!s.completes.empty()) {
      EXPECT_THAT(Indices(s.completes[0].samples()), ElementsAre(3, 4));
    }
    return true;
  });
  EXPECT_THAT(Stored("t"), ElementsAre(0, 1, 2, 3, 4));
  EXPECT_EQ(Pending(), 0);
  EXPECT_EQ(worker_->stats().samples_sent, 5);
}

TEST_F(WorkerTest, Run_SamplesAlreadyStored_ResumesAfterThem) {
  options_.max_jobs = 1;
  client_.Mutate([](State& s) {
    s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 5, {0, 1, 3}));
  });
  MakeWorker();
  ASSERT_THAT(worker_->Run(), IsOk());
  EXPECT_THAT(Stored("t"), ElementsAre(2, 4));
  EXPECT_EQ(evaluator_->samples_evaluated(), 2);
}

TEST_F(WorkerTest, Run_ReportUnavailable_KeepsSamplesAndResendsBeforeComplete) {
  options_.max_jobs = 1;
  client_.Mutate([](State& s) {
    s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 4));
    for (int i = 0; i < 6; ++i) s.errors["ReportSamples"].push_back(absl::UnavailableError("down"));
    s.errors["Complete"].push_back(absl::UnavailableError("down"));
  });
  MakeWorker();
  ASSERT_THAT(worker_->Run(), IsOk());
  EXPECT_THAT(Stored("t"), ElementsAre(0, 1, 2, 3));
  client_.Inspect<bool>([](const State& s) {
    EXPECT_EQ(s.completes.size(), 1u);
    return true;
  });
  EXPECT_EQ(Pending(), 0);
  EXPECT_EQ(worker_->stats().samples_duplicate, 0);
}

TEST_F(WorkerTest, Run_LeaseRevoked_DropsJobWithoutClosingIt) {
  options_.max_jobs = 1;
  client_.Mutate([](State& s) {
    s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 4));
    s.revoked.insert("t");
  });
  MakeWorker();
  ASSERT_THAT(worker_->Run(), IsOk());
  client_.Inspect<bool>([](const State& s) {
    EXPECT_THAT(s.completes, IsEmpty());
    EXPECT_THAT(s.fails, IsEmpty());
    return true;
  });
  EXPECT_EQ(worker_->stats().jobs_lost, 1);
  EXPECT_EQ(Pending(), 0);  // undeliverable under a dead lease: dropped
}

TEST_F(WorkerTest, Run_HeartbeatSaysCancelled_StopsEvaluation) {
  options_.max_jobs = 1;
  client_.Mutate([](State& s) { s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 6)); });
  gate_.at = 2;
  gate_.until_cancelled = true;
  MakeWorker();
  Start();
  gate_.reached.WaitForNotification();
  client_.Await([](const State& s) { return s.stored.count("t") && s.stored.at("t").size() == 2; });
  client_.Mutate([](State& s) { s.stops["t"] = v1::STOP_REASON_CANCELLED; });
  clock_.Advance(absl::Seconds(11));  // past ttl/3 = 10 s
  client_.Await([](const State& s) { return !s.heartbeats.empty(); });
  gate_.open.Notify();
  Join();
  const auto hb =
      client_.Inspect<v1::HeartbeatRequest>([](const State& s) { return s.heartbeats.at(0); });
  ASSERT_EQ(hb.leases_size(), 1);
  EXPECT_EQ(hb.leases(0).lease_token(), "t");
  EXPECT_EQ(hb.leases(0).samples_done(), 2);
  EXPECT_THAT(Stored("t"), ElementsAre(0, 1));
  client_.Inspect<bool>([](const State& s) {
    EXPECT_THAT(s.completes, IsEmpty());
    EXPECT_THAT(s.fails, IsEmpty());
    return true;
  });
  EXPECT_EQ(evaluator_->samples_evaluated(), 2);
}

TEST_F(WorkerTest, Stop_Release_FailsPreemptedKeepingDoneSamples) {
  client_.Mutate([](State& s) {
    s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 6));
    s.queued.push_back(FakeWorkerClient::MakeLease("t2", "k2", 6));
  });
  gate_.at = 3;
  gate_.until_cancelled = true;
  MakeWorker();
  Start();
  gate_.reached.WaitForNotification();
  client_.Await([](const State& s) { return s.stored.count("t") && s.stored.at("t").size() == 3; });
  worker_->Stop(StopMode::kRelease);
  gate_.open.Notify();
  Join();
  EXPECT_THAT(Stored("t"), ElementsAre(0, 1, 2));
  client_.Inspect<bool>([](const State& s) {
    EXPECT_THAT(s.completes, IsEmpty());
    EXPECT_EQ(s.fails.size(), 1u);
    if (!s.fails.empty()) {
      EXPECT_TRUE(s.fails[0].preempted());
      EXPECT_FALSE(s.fails[0].permanent());
    }
    EXPECT_EQ(s.queued.size(), 1u);  // the second lease was never taken
    return true;
  });
  EXPECT_EQ(worker_->stats().jobs_released, 1);
}

TEST_F(WorkerTest, Stop_FinishJob_CompletesTheRunningJobThenStops) {
  client_.Mutate([](State& s) {
    s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 4));
    s.queued.push_back(FakeWorkerClient::MakeLease("t2", "k2", 4));
  });
  gate_.at = 1;
  MakeWorker();
  Start();
  gate_.reached.WaitForNotification();
  worker_->Stop(StopMode::kFinishJob);
  gate_.open.Notify();
  Join();
  EXPECT_THAT(Stored("t"), ElementsAre(0, 1, 2, 3));
  client_.Inspect<bool>([](const State& s) {
    EXPECT_EQ(s.completes.size(), 1u);
    EXPECT_THAT(s.fails, IsEmpty());
    EXPECT_EQ(s.queued.size(), 1u);
    return true;
  });
}

TEST_F(WorkerTest, Run_EvaluatorRefuses_FailsPermanently) {
  options_.max_jobs = 1;
  client_.Mutate([](State& s) { s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 4)); });
  MakeWorker({.refuse_task = "ruler_niah"});
  ASSERT_THAT(worker_->Run(), IsOk());
  const auto fails =
      client_.Inspect<std::vector<v1::FailRequest>>([](const State& s) { return s.fails; });
  ASSERT_EQ(fails.size(), 1u);
  EXPECT_TRUE(fails[0].permanent());
  EXPECT_FALSE(fails[0].preempted());
  EXPECT_THAT(fails[0].error(), HasSubstr("refuses task ruler_niah"));
  EXPECT_EQ(evaluator_->samples_evaluated(), 0);
}

TEST_F(WorkerTest, Run_EvaluationError_FailsForRetryAfterReportingDoneSamples) {
  options_.max_jobs = 1;
  client_.Mutate([](State& s) { s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 5)); });
  MakeWorker({.fail_at = 2});
  ASSERT_THAT(worker_->Run(), IsOk());
  EXPECT_THAT(Stored("t"), ElementsAre(0, 1));
  const auto fails =
      client_.Inspect<std::vector<v1::FailRequest>>([](const State& s) { return s.fails; });
  ASSERT_EQ(fails.size(), 1u);
  EXPECT_FALSE(fails[0].permanent());
  EXPECT_THAT(fails[0].error(), HasSubstr("test failure at 2"));
}

TEST_F(WorkerTest, ProductionEvaluator_JobItCannotRun_FailedPermanentlyWithReason) {
  options_.max_jobs = 1;
  client_.Mutate([](State& s) { s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 4)); });
  EngineEvaluator evaluator;
  Worker worker(options_, &client_, &evaluator, outbox_.get(), &clock_);
  ASSERT_THAT(worker.Run(), IsOk());
  const auto fails =
      client_.Inspect<std::vector<v1::FailRequest>>([](const State& s) { return s.fails; });
  ASSERT_EQ(fails.size(), 1u);
  EXPECT_TRUE(fails[0].permanent());
  EXPECT_THAT(fails[0].error(), HasSubstr("model"));
  const auto reg =
      client_.Inspect<v1::RegisterWorkerRequest>([](const State& s) { return s.registers.at(0); });
  EXPECT_THAT(reg.methods(), ::testing::Contains("dense"));
}

TEST_F(WorkerTest, Run_CoordinatorDown_BacksOffExponentiallyThenRegisters) {
  options_.max_jobs = 1;
  options_.backoff_initial = absl::Milliseconds(100);
  options_.backoff_max = absl::Milliseconds(300);
  client_.Mutate([](State& s) {
    for (int i = 0; i < 4; ++i) {
      s.errors["RegisterWorker"].push_back(absl::UnavailableError("connection refused"));
    }
    s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 1));
  });
  MakeWorker();
  ASSERT_THAT(worker_->Run(), IsOk());
  EXPECT_THAT(clock_.sleeps(),
              ElementsAre(absl::Milliseconds(100), absl::Milliseconds(200), absl::Milliseconds(250),
                          absl::Milliseconds(50),  // 300 in slices
                          absl::Milliseconds(250), absl::Milliseconds(50)));
  EXPECT_EQ(worker_->stats().jobs_completed, 1);
}

TEST_F(WorkerTest, Run_CoordinatorForgotWorker_RegistersAgain) {
  options_.max_jobs = 1;
  client_.Mutate([](State& s) {
    s.errors["Lease"].push_back(absl::FailedPreconditionError("unknown worker w1"));
    s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 1));
  });
  MakeWorker();
  ASSERT_THAT(worker_->Run(), IsOk());
  EXPECT_EQ(client_.Inspect<size_t>([](const State& s) { return s.registers.size(); }), 2u);
  EXPECT_EQ(worker_->stats().reconnects, 1);
  EXPECT_EQ(worker_->stats().jobs_completed, 1);
}

TEST_F(WorkerTest, Run_AfterCrash_ResendsOutboxAndReleasesOldLease) {
  // What a crashed run left behind: a lease and two samples never acknowledged.
  ASSERT_THAT(outbox_->AddLease("old", "k"), IsOk());
  for (int i : {0, 1}) {
    v1::SampleResult s;
    s.set_index(i);
    s.set_score(TestScore("k", i));
    ASSERT_THAT(outbox_->Add("old", s), IsOk());
  }
  MakeWorker();
  Start();
  client_.Await([](const State& s) { return !s.fails.empty(); });
  worker_->Stop(StopMode::kRelease);
  Join();
  EXPECT_THAT(Stored("old"), ElementsAre(0, 1));
  const auto fails =
      client_.Inspect<std::vector<v1::FailRequest>>([](const State& s) { return s.fails; });
  EXPECT_EQ(fails[0].lease_token(), "old");
  EXPECT_TRUE(fails[0].preempted());
  EXPECT_EQ(Pending(), 0);
  SF_ASSERT_OK_AND_ASSIGN(auto leases, outbox_->Leases());
  EXPECT_THAT(leases, IsEmpty());
}

TEST_F(WorkerTest, Run_OldLeaseTheCoordinatorRefuses_DroppedAndWorkGoesOn) {
  // A lease a crashed run left whose samples the coordinator refuses for good: keeping
  // it would stop every later start of this worker.
  options_.max_jobs = 1;
  ASSERT_THAT(outbox_->AddLease("old", "k"), IsOk());
  v1::SampleResult sample;
  sample.set_index(0);
  sample.set_score(TestScore("k", 0));
  ASSERT_THAT(outbox_->Add("old", sample), IsOk());
  client_.Mutate([](State& s) {
    s.errors["ReportSamples"].push_back(
        absl::InvalidArgumentError("sample index 0 of job k is out of range [0, 0)"));
    s.queued.push_back(FakeWorkerClient::MakeLease("t", "k2", 1));
  });
  MakeWorker();
  ASSERT_THAT(worker_->Run(), IsOk());
  EXPECT_EQ(worker_->stats().jobs_completed, 1);
  SF_ASSERT_OK_AND_ASSIGN(auto leases, outbox_->Leases());
  EXPECT_THAT(leases, IsEmpty());
}

TEST_F(WorkerTest, Run_CoordinatorStoppedMidJob_CallsCancelled_RetriesAndCompletes) {
  // A coordinator stopping (SIGTERM) cancels the calls still in flight after its grace
  // period: the worker must ride that out as it rides out an unreachable coordinator.
  options_.max_jobs = 1;
  client_.Mutate([](State& s) {
    s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 4));
    for (int i = 0; i < 3; ++i) {
      s.errors["ReportSamples"].push_back(absl::CancelledError("ReportSamples: Cancelled"));
    }
    s.errors["Heartbeat"].push_back(absl::CancelledError("Heartbeat: Cancelled"));
    s.errors["Complete"].push_back(absl::CancelledError("Complete: Cancelled"));
  });
  MakeWorker();
  ASSERT_THAT(worker_->Run(), IsOk());
  EXPECT_THAT(Stored("t"), ElementsAre(0, 1, 2, 3));
  EXPECT_EQ(worker_->stats().jobs_completed, 1);
  EXPECT_EQ(Pending(), 0);
}

TEST_F(WorkerTest, Run_LeaseCancelledByStoppingCoordinator_KeepsPolling) {
  options_.max_jobs = 1;
  client_.Mutate([](State& s) {
    s.errors["Lease"].push_back(absl::CancelledError("Lease: Cancelled"));
    s.queued.push_back(FakeWorkerClient::MakeLease("t", "k", 1));
  });
  MakeWorker();
  ASSERT_THAT(worker_->Run(), IsOk());
  EXPECT_EQ(worker_->stats().jobs_completed, 1);
}

TEST_F(WorkerTest, Run_WrongToken_GivesUpWithTheCoordinatorsMessage) {
  client_.Mutate([](State& s) {
    s.errors["RegisterWorker"].push_back(absl::UnauthenticatedError("wrong bearer token"));
  });
  MakeWorker();
  absl::Status status = worker_->Run();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(status.message(), HasSubstr("wrong bearer token"));
}

TEST_F(WorkerTest, Run_OutboxUnreadable_GivesUpWithClearMessageInsteadOfRetrying) {
  // An outbox whose samples table another program replaced: reading it fails on every
  // try, so retrying cannot help.
  const std::filesystem::path dir = sf::testing::FreshTestDir();
  const std::string path = (dir / "w1.outbox").string();
  SF_ASSERT_OK_AND_ASSIGN(outbox_, Outbox::Open(path));
  ASSERT_THAT(outbox_->AddLease("old", "k"), IsOk());
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "DROP TABLE samples; CREATE TABLE samples (x INTEGER)", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(other);
  MakeWorker();
  absl::Notification returned;
  Start();
  std::thread notifier([this, &returned] {
    thread_.join();
    returned.Notify();
  });
  if (!returned.WaitForNotificationWithTimeout(absl::Seconds(20))) {
    ADD_FAILURE() << "the worker kept retrying an outbox that cannot be read";
    worker_->Stop(StopMode::kRelease);
  }
  notifier.join();
  EXPECT_FALSE(run_status_.ok());
  EXPECT_THAT(run_status_.message(), HasSubstr("outbox"));
  EXPECT_THAT(run_status_.message(), HasSubstr("--outbox"));
}

TEST_F(WorkerTest, Stop_WhileIdle_EndsTheLongPoll) {
  MakeWorker();
  Start();
  client_.Await([](const State& s) { return s.lease_polls > 0; });
  worker_->Stop(StopMode::kRelease);
  Join();
  EXPECT_EQ(worker_->stats().jobs_completed, 0);
}

}  // namespace
}  // namespace sf::worker
