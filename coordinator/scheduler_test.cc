#include "coordinator/scheduler.h"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "common/clock.h"
#include "common/testing/status_matchers.h"
#include "coordinator/sqlite.h"
#include "coordinator/testing/test_jobs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf::coordinator {
namespace {

using ::sf::testing::IsOk;
using ::sf::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::JobOptions;
using testing::MakeJob;
using testing::MakeSample;
using testing::MakeWorker;
using testing::TempDb;

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    scheduler_.reset();
    SchedulerOptions options;
    options.lease_ttl = absl::Seconds(60);
    options.max_attempts = 3;
    options.backoff_base = absl::Seconds(10);
    options.backoff_max = absl::Seconds(100);
    options_ = options;
    auto s = Scheduler::Open(db_.path(), &clock_, options_);
    ASSERT_THAT(s.status(), IsOk());
    scheduler_ = std::move(*s);
  }

  int64_t Submit(const std::string& name, std::vector<v1::JobSpec> jobs, bool force = false,
                 int priority = 0) {
    v1::SubmitSweepRequest r;
    r.set_sweep_name(name);
    r.set_force(force);
    r.set_priority(priority);
    for (auto& j : jobs) *r.add_jobs() = j;
    auto resp = scheduler_->SubmitSweep(r);
    EXPECT_THAT(resp.status(), IsOk());
    last_submit_ = resp.ok() ? *resp : v1::SubmitSweepResponse();
    return last_submit_.sweep_id();
  }

  void Register(const std::string& id, int64_t memory = 80LL << 30) {
    ASSERT_THAT(scheduler_->RegisterWorker(MakeWorker(id, memory)).status(), IsOk());
  }

  std::optional<v1::Lease> LeaseFor(const std::string& worker,
                                    std::vector<std::string> loaded = {}) {
    v1::LeaseRequest r;
    r.set_worker_id(worker);
    for (auto& m : loaded) r.add_loaded_models(m);
    auto resp = scheduler_->Lease(r);
    EXPECT_THAT(resp.status(), IsOk());
    if (!resp.ok() || !resp->has_lease()) return std::nullopt;
    return resp->lease();
  }

  absl::Status Complete(const std::string& token, double mean = 0.5) {
    v1::CompleteRequest r;
    r.set_lease_token(token);
    r.mutable_result()->set_metric("accuracy");
    r.mutable_result()->set_mean(mean);
    r.mutable_result()->set_n(4);
    return scheduler_->Complete(r).status();
  }

  absl::StatusOr<v1::FailResponse> Fail(const std::string& token, const std::string& error,
                                        bool preempted = false) {
    v1::FailRequest r;
    r.set_lease_token(token);
    r.set_error(error);
    r.set_preempted(preempted);
    return scheduler_->Fail(r);
  }

  absl::StatusOr<v1::ReportSamplesResponse> Report(const std::string& token,
                                                   std::vector<int> indices) {
    v1::ReportSamplesRequest r;
    r.set_lease_token(token);
    for (int i : indices) *r.add_samples() = MakeSample(i);
    return scheduler_->ReportSamples(r);
  }

  v1::Sweep GetSweep(int64_t id) {
    v1::GetSweepRequest r;
    r.set_id(id);
    auto s = scheduler_->GetSweep(r);
    EXPECT_THAT(s.status(), IsOk());
    return s.ok() ? *s : v1::Sweep();
  }

  int64_t CountResults() {
    int64_t n = 0;
    EXPECT_THAT(scheduler_->Results(v1::ResultsRequest(),
                                    [&](v1::ResultsResponse& r) {
                                      n += r.rows_size();
                                      return true;
                                    }),
                IsOk());
    return n;
  }

  TempDb db_;
  FakeClock clock_;
  SchedulerOptions options_;
  std::unique_ptr<Scheduler> scheduler_;
  v1::SubmitSweepResponse last_submit_;
};

TEST_F(SchedulerTest, Submit_NewSweep_AllJobsQueued) {
  int64_t id = Submit("s1", {MakeJob("a"), MakeJob("b"), MakeJob("a")});
  EXPECT_EQ(last_submit_.jobs_total(), 2);
  EXPECT_EQ(last_submit_.jobs_queued(), 2);
  v1::Sweep sweep = GetSweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_RUNNING);
  EXPECT_EQ(sweep.counts().queued(), 2);
  EXPECT_EQ(sweep.counts().samples_total(), 8);
}

TEST_F(SchedulerTest, Submit_InvalidJob_NothingStored) {
  v1::SubmitSweepRequest r;
  r.set_sweep_name("bad");
  *r.add_jobs() = MakeJob("ok");
  v1::JobSpec nan_cost = MakeJob("nan");
  nan_cost.set_cost(std::nan(""));
  *r.add_jobs() = nan_cost;
  EXPECT_THAT(scheduler_->SubmitSweep(r).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("jobs[1]")));
  v1::GetSweepRequest g;
  g.set_name("bad");
  EXPECT_THAT(scheduler_->GetSweep(g).status(),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  r.set_sweep_name("bad name with spaces");
  r.mutable_jobs()->RemoveLast();
  EXPECT_THAT(scheduler_->SubmitSweep(r).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sweep_name")));
}

TEST_F(SchedulerTest, Lease_ThenComplete_SweepFinishesWithOneResult) {
  int64_t id = Submit("s1", {MakeJob("a")});
  Register("w1");
  auto lease = LeaseFor("w1");
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->job().key(), "a");
  EXPECT_EQ(lease->attempt(), 1);
  EXPECT_EQ(lease->expires_unix_ms(), absl::ToUnixMillis(clock_.Now() + absl::Seconds(60)));
  EXPECT_FALSE(lease->lease_token().empty());
  EXPECT_FALSE(LeaseFor("w1").has_value());
  EXPECT_EQ(GetSweep(id).counts().leased(), 1);
  ASSERT_THAT(Complete(lease->lease_token()), IsOk());
  v1::Sweep sweep = GetSweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_FINISHED);
  EXPECT_EQ(sweep.counts().done(), 1);
  EXPECT_EQ(CountResults(), 1);
  // A repeated Complete is refused, never double-counted.
  EXPECT_THAT(Complete(lease->lease_token()), StatusIs(absl::StatusCode::kAborted, ::testing::_));
  EXPECT_EQ(CountResults(), 1);
}

TEST_F(SchedulerTest, Lease_SeveralPerCall_GrantsQueuedJobsUpToTheAsk) {
  int64_t id = Submit("s1", {MakeJob("a"), MakeJob("b"), MakeJob("c")});
  Register("w1");
  v1::LeaseRequest r;
  r.set_worker_id("w1");
  r.set_max_leases(2);
  auto two = scheduler_->Lease(r);
  ASSERT_THAT(two.status(), IsOk());
  ASSERT_TRUE(two->has_lease());
  ASSERT_EQ(two->more_leases_size(), 1);
  EXPECT_NE(two->lease().lease_token(), two->more_leases(0).lease_token());
  EXPECT_NE(two->lease().job().key(), two->more_leases(0).job().key());
  EXPECT_EQ(GetSweep(id).counts().leased(), 2);
  // Only one job is left: the answer holds what is queued, without waiting for more.
  r.set_max_leases(5);
  auto rest = scheduler_->Lease(r);
  ASSERT_THAT(rest.status(), IsOk());
  ASSERT_TRUE(rest->has_lease());
  EXPECT_EQ(rest->more_leases_size(), 0);
  // Every lease is a lease of its own: each completes its job.
  for (const std::string& token : {two->lease().lease_token(), two->more_leases(0).lease_token(),
                                   rest->lease().lease_token()}) {
    EXPECT_THAT(Complete(token), IsOk());
  }
  EXPECT_EQ(GetSweep(id).counts().done(), 3);
  EXPECT_EQ(CountResults(), 3);
}

TEST_F(SchedulerTest, Lease_UnregisteredWorker_FailedPrecondition) {
  Submit("s1", {MakeJob("a")});
  v1::LeaseRequest r;
  r.set_worker_id("ghost");
  EXPECT_THAT(scheduler_->Lease(r).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("RegisterWorker")));
}

TEST_F(SchedulerTest, Lease_Expired_RequeuedWithExponentialBackoff) {
  Submit("s1", {MakeJob("a")});
  Register("w1");
  auto first = LeaseFor("w1");
  ASSERT_TRUE(first.has_value());
  clock_.Advance(absl::Seconds(61));
  EXPECT_EQ(*scheduler_->ExpireLeases(), 1);
  // Backoff after the first failed attempt: 10 s.
  EXPECT_FALSE(LeaseFor("w1").has_value());
  clock_.Advance(absl::Seconds(10));
  auto second = LeaseFor("w1");
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->attempt(), 2);
  clock_.Advance(absl::Seconds(61));
  EXPECT_EQ(*scheduler_->ExpireLeases(), 1);
  // Second failure: 20 s, counted from the lease's expiry (1 s before it was noticed).
  clock_.Advance(absl::Seconds(18));
  EXPECT_FALSE(LeaseFor("w1").has_value());
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(LeaseFor("w1").has_value());
}

TEST_F(SchedulerTest, Fail_MaxAttempts_FailedWithLastError) {
  int64_t id = Submit("s1", {MakeJob("a")});
  Register("w1");
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto lease = LeaseFor("w1");
    ASSERT_TRUE(lease.has_value()) << attempt;
    auto resp = Fail(lease->lease_token(), absl::StrCat("boom ", attempt));
    ASSERT_THAT(resp.status(), IsOk());
    EXPECT_EQ(resp->will_retry(), attempt < 3);
    clock_.Advance(absl::Minutes(5));
  }
  EXPECT_FALSE(LeaseFor("w1").has_value());
  v1::Sweep sweep = GetSweep(id);
  EXPECT_EQ(sweep.counts().failed(), 1);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_FINISHED);
  auto events = scheduler_->ReadEvents(id, 0, 1000);
  ASSERT_THAT(events.status(), IsOk());
  bool saw_failed = false;
  for (const auto& e : *events) {
    if (e.kind() == v1::EVENT_KIND_JOB_FAILED) {
      saw_failed = true;
      EXPECT_THAT(e.message(), HasSubstr("boom 3"));
    }
  }
  EXPECT_TRUE(saw_failed);
}

TEST_F(SchedulerTest, Fail_Preempted_NotCountedAsAttemptAndNoBackoff) {
  int64_t id = Submit("s1", {MakeJob("a")});
  Register("w1");
  for (int i = 0; i < 5; ++i) {
    auto lease = LeaseFor("w1");
    ASSERT_TRUE(lease.has_value()) << i;
    auto resp = Fail(lease->lease_token(), "SIGTERM", /*preempted=*/true);
    ASSERT_THAT(resp.status(), IsOk());
    EXPECT_TRUE(resp->will_retry());
  }
  v1::Sweep sweep = GetSweep(id);
  EXPECT_EQ(sweep.counts().failed(), 0);
  EXPECT_EQ(sweep.counts().queued(), 1);
  EXPECT_EQ(sweep.counts().preemptions(), 5);
}

TEST_F(SchedulerTest, ResumedJob_AggregateComesFromAllStoredSamples) {
  Submit("s1", {MakeJob("a")});
  Register("w1");
  Register("w2");
  auto first = LeaseFor("w1");
  ASSERT_TRUE(first.has_value());
  v1::ReportSamplesRequest r1;
  r1.set_lease_token(first->lease_token());
  *r1.add_samples() = MakeSample(0, 0.0);
  ASSERT_THAT(scheduler_->ReportSamples(r1).status(), IsOk());
  ASSERT_THAT(Fail(first->lease_token(), "stopping", /*preempted=*/true).status(), IsOk());
  auto second = LeaseFor("w2");
  ASSERT_TRUE(second.has_value());
  v1::ReportSamplesRequest r2;
  r2.set_lease_token(second->lease_token());
  for (int i : {1, 2, 3}) *r2.add_samples() = MakeSample(i, 1.0);
  ASSERT_THAT(scheduler_->ReportSamples(r2).status(), IsOk());
  // The second worker saw only its own three samples and says so; the stored result
  // must cover all four.
  v1::CompleteRequest done;
  done.set_lease_token(second->lease_token());
  done.mutable_result()->set_metric("accuracy");
  done.mutable_result()->set_mean(1.0);
  done.mutable_result()->set_n(3);
  done.mutable_result()->set_samples_evaluated(3);
  v1::ModelShape* shape = done.mutable_result()->mutable_model_shape();
  shape->set_hidden(64);
  shape->set_layers(2);
  shape->set_heads(4);
  shape->set_kv_heads(2);
  shape->set_head_dim(16);
  shape->set_intermediate(128);
  shape->set_vocab(1000);
  shape->set_qkv_bias(true);
  shape->set_params(123456);
  shape->set_random_weights(true);
  ASSERT_THAT(scheduler_->Complete(done).status(), IsOk());
  v1::JobResult stored;
  ASSERT_THAT(scheduler_->Results(v1::ResultsRequest(),
                                  [&](v1::ResultsResponse& r) {
                                    if (r.rows_size() > 0) stored = r.rows(0).result();
                                    return true;
                                  }),
              IsOk());
  EXPECT_EQ(stored.n(), 4);
  EXPECT_DOUBLE_EQ(stored.mean(), 0.75);
  EXPECT_NEAR(stored.variance(), 0.25, 1e-12);  // sample variance of {0, 1, 1, 1}
  // Schema 2: what the last attempt covered and the model's architecture round-trip.
  EXPECT_EQ(stored.samples_evaluated(), 3);
  EXPECT_EQ(stored.model_shape().SerializeAsString(), shape->SerializeAsString());
}

TEST_F(SchedulerTest, StaleLease_LateReportsRejected_ResultExactlyOnce) {
  Submit("s1", {MakeJob("a")});
  Register("w1");
  Register("w2");
  auto old_lease = LeaseFor("w1");
  ASSERT_TRUE(old_lease.has_value());
  ASSERT_THAT(Report(old_lease->lease_token(), {0}).status(), IsOk());
  clock_.Advance(absl::Seconds(61));
  ASSERT_THAT(scheduler_->ExpireLeases().status(), IsOk());
  clock_.Advance(absl::Seconds(10));
  auto new_lease = LeaseFor("w2");
  ASSERT_TRUE(new_lease.has_value());
  EXPECT_THAT(new_lease->samples_done(), ElementsAre(0));
  // The old worker wakes up and reports late: every write is refused.
  EXPECT_THAT(Report(old_lease->lease_token(), {1}).status(),
              StatusIs(absl::StatusCode::kAborted, ::testing::_));
  EXPECT_THAT(Complete(old_lease->lease_token()),
              StatusIs(absl::StatusCode::kAborted, ::testing::_));
  EXPECT_THAT(Fail(old_lease->lease_token(), "x").status(),
              StatusIs(absl::StatusCode::kAborted, ::testing::_));
  v1::HeartbeatRequest hb;
  hb.set_worker_id("w1");
  hb.add_leases()->set_lease_token(old_lease->lease_token());
  auto hb_resp = scheduler_->Heartbeat(hb);
  ASSERT_THAT(hb_resp.status(), IsOk());
  ASSERT_EQ(hb_resp->stop_size(), 1);
  EXPECT_EQ(hb_resp->stop(0).reason(), v1::STOP_REASON_LEASE_LOST);
  ASSERT_THAT(Report(new_lease->lease_token(), {1, 2, 3}).status(), IsOk());
  ASSERT_THAT(Complete(new_lease->lease_token()), IsOk());
  EXPECT_EQ(CountResults(), 1);
}

TEST_F(SchedulerTest, ReportSamples_DuplicateAndOutOfOrder_StoredOnceAndResumed) {
  int64_t id = Submit("s1", {MakeJob("a", {.samples = 6})});
  Register("w1");
  auto lease = LeaseFor("w1");
  ASSERT_TRUE(lease.has_value());
  auto r1 = Report(lease->lease_token(), {3, 1});
  ASSERT_THAT(r1.status(), IsOk());
  EXPECT_THAT(r1->accepted(), ElementsAre(3, 1));
  auto r2 = Report(lease->lease_token(), {1, 2, 1});
  ASSERT_THAT(r2.status(), IsOk());
  EXPECT_THAT(r2->accepted(), ElementsAre(2));
  EXPECT_THAT(r2->duplicates(), ElementsAre(1, 1));
  EXPECT_THAT(Report(lease->lease_token(), {6}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("out of range")));
  EXPECT_EQ(GetSweep(id).counts().samples_done(), 3);
  // Interrupted: the next lease resumes after the stored samples.
  ASSERT_THAT(Fail(lease->lease_token(), "stop", /*preempted=*/true).status(), IsOk());
  auto resumed = LeaseFor("w1");
  ASSERT_TRUE(resumed.has_value());
  EXPECT_THAT(resumed->samples_done(), ElementsAre(1, 2, 3));
}

v1::CompleteRequest CompleteWithSamples(const std::string& token,
                                        std::vector<std::pair<int, double>> samples) {
  v1::CompleteRequest r;
  r.set_lease_token(token);
  r.mutable_result()->set_metric("accuracy");
  r.mutable_result()->set_n(static_cast<int64_t>(samples.size()));
  for (const auto& [index, score] : samples) *r.add_samples() = MakeSample(index, score);
  return r;
}

v1::JobResult OnlyResult(Scheduler& scheduler) {
  v1::JobResult stored;
  EXPECT_THAT(scheduler.Results(v1::ResultsRequest(),
                                [&](v1::ResultsResponse& r) {
                                  if (r.rows_size() > 0) stored = r.rows(0).result();
                                  return true;
                                }),
              IsOk());
  return stored;
}

TEST_F(SchedulerTest, Complete_WithLastSamples_StoredInTheAggregateAndRetryStoresNothing) {
  int64_t id = Submit("s1", {MakeJob("a")});
  Register("w1");
  auto lease = LeaseFor("w1");
  ASSERT_TRUE(lease.has_value());
  ASSERT_THAT(Report(lease->lease_token(), {0}).status(), IsOk());
  // Sample 0 again (its acknowledgement was lost; the stored score 1.0 stays) beside
  // the last three.
  const v1::CompleteRequest done =
      CompleteWithSamples(lease->lease_token(), {{0, 0.0}, {1, 0.0}, {2, 1.0}, {3, 1.0}});
  auto response = scheduler_->Complete(done);
  ASSERT_THAT(response.status(), IsOk());
  EXPECT_THAT(response->accepted(), ElementsAre(1, 2, 3));
  EXPECT_THAT(response->duplicates(), ElementsAre(0));
  v1::Sweep sweep = GetSweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_FINISHED);
  EXPECT_EQ(sweep.counts().done(), 1);
  EXPECT_EQ(sweep.counts().samples_done(), 4);
  const v1::JobResult stored = OnlyResult(*scheduler_);
  EXPECT_EQ(stored.n(), 4);  // the aggregate includes the samples that came with Complete
  EXPECT_DOUBLE_EQ(stored.mean(), 0.75);
  // The reply was lost and the worker retries: refused, and nothing is stored twice.
  EXPECT_THAT(scheduler_->Complete(done).status(),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("not live")));
  EXPECT_EQ(GetSweep(id).counts().samples_done(), 4);
  EXPECT_EQ(CountResults(), 1);
  EXPECT_EQ(OnlyResult(*scheduler_).n(), 4);
}

TEST_F(SchedulerTest, Complete_WithBadSample_RefusedAndTheJobStaysLeased) {
  int64_t id = Submit("s1", {MakeJob("a")});
  Register("w1");
  auto lease = LeaseFor("w1");
  ASSERT_TRUE(lease.has_value());
  const std::string token = lease->lease_token();
  EXPECT_THAT(scheduler_->Complete(CompleteWithSamples(token, {{1, 1.0}, {4, 1.0}})).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("out of range [0, 4)")));
  EXPECT_THAT(scheduler_->Complete(CompleteWithSamples(token, {{-1, 1.0}})).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative")));
  EXPECT_THAT(scheduler_->Complete(CompleteWithSamples(token, {{2, std::nan("")}})).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("finite")));
  v1::CompleteRequest too_long = CompleteWithSamples(token, {{2, 1.0}});
  too_long.mutable_samples(0)->set_prediction(std::string((1 << 20) + 1, 'x'));
  EXPECT_THAT(scheduler_->Complete(too_long).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("samples[0].prediction")));
  // Nothing of the refused calls was stored and the lease still holds the job.
  v1::Sweep sweep = GetSweep(id);
  EXPECT_EQ(sweep.counts().leased(), 1);
  EXPECT_EQ(sweep.counts().samples_done(), 0);
  EXPECT_EQ(CountResults(), 0);
  auto good = scheduler_->Complete(CompleteWithSamples(token, {{1, 1.0}, {2, 1.0}}));
  ASSERT_THAT(good.status(), IsOk());
  EXPECT_THAT(good->accepted(), ElementsAre(1, 2));
  EXPECT_EQ(OnlyResult(*scheduler_).n(), 2);
}

TEST_F(SchedulerTest, Heartbeat_RenewsLeaseBeyondTtl) {
  Submit("s1", {MakeJob("a")});
  Register("w1");
  auto lease = LeaseFor("w1");
  ASSERT_TRUE(lease.has_value());
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Seconds(45));
    v1::HeartbeatRequest hb;
    hb.set_worker_id("w1");
    hb.add_leases()->set_lease_token(lease->lease_token());
    auto resp = scheduler_->Heartbeat(hb);
    ASSERT_THAT(resp.status(), IsOk());
    EXPECT_EQ(resp->stop_size(), 0);
  }
  EXPECT_EQ(*scheduler_->ExpireLeases(), 0);
  EXPECT_THAT(Complete(lease->lease_token()), IsOk());
}

TEST_F(SchedulerTest, Placement_LongestFirstWithinPriority) {
  Submit("low", {MakeJob("short", {.cost = 1}), MakeJob("long", {.cost = 9})});
  Submit("high", {MakeJob("urgent", {.cost = 0.1})}, false, /*priority=*/5);
  Register("w1");
  std::vector<std::string> order;
  while (auto lease = LeaseFor("w1")) order.push_back(lease->job().key());
  EXPECT_THAT(order, ElementsAre("urgent", "long", "short"));
}

TEST_F(SchedulerTest, Placement_ModelAffinityBeatsCost) {
  Submit("s", {MakeJob("big-a", {.model = "a", .cost = 9}),
               MakeJob("small-b", {.model = "b", .cost = 1})});
  Register("w1");
  auto lease = LeaseFor("w1", {"id-b"});
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->job().key(), "small-b");
}

TEST_F(SchedulerTest, Placement_JobNeedingMoreMemoryGoesToBigWorker) {
  Submit("s", {MakeJob("huge", {.cost = 9, .memory_bytes = 100LL << 30}),
               MakeJob("tiny", {.cost = 1, .memory_bytes = 1LL << 30})});
  Register("small", 24LL << 30);
  Register("big", 141LL << 30);
  auto small = LeaseFor("small");
  ASSERT_TRUE(small.has_value());
  EXPECT_EQ(small->job().key(), "tiny");
  EXPECT_FALSE(LeaseFor("small").has_value());
  auto big = LeaseFor("big");
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(big->job().key(), "huge");
}

TEST_F(SchedulerTest, Placement_WorkerMethodsRestrictJobs) {
  Submit("s", {MakeJob("quest", {.cost = 9, .method = "quest"}), MakeJob("dense")});
  v1::RegisterWorkerRequest w = MakeWorker("w1");
  w.add_methods("dense");
  ASSERT_THAT(scheduler_->RegisterWorker(w).status(), IsOk());
  auto lease = LeaseFor("w1");
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->job().key(), "dense");
  EXPECT_FALSE(LeaseFor("w1").has_value());
}

TEST_F(SchedulerTest, RegisterWorker_SlurmPlacement_ListedAndStoredInColumns) {
  v1::RegisterWorkerRequest w = MakeWorker("w1");
  w.set_slurm_job_id("4242_3");
  w.set_slurm_node("gpu-node-07");
  ASSERT_THAT(scheduler_->RegisterWorker(w).status(), IsOk());
  ASSERT_THAT(scheduler_->RegisterWorker(MakeWorker("w2")).status(), IsOk());
  auto listed = scheduler_->ListWorkers(v1::ListWorkersRequest());
  ASSERT_THAT(listed.status(), IsOk());
  ASSERT_EQ(listed->workers_size(), 2);
  EXPECT_EQ(listed->workers(0).slurm_job_id(), "4242_3");
  EXPECT_EQ(listed->workers(0).slurm_node(), "gpu-node-07");
  EXPECT_EQ(listed->workers(1).slurm_job_id(), "");
  // The columns are there for `sfctl query`.
  auto db = Database::OpenReadOnly(db_.path());
  ASSERT_THAT(db.status(), IsOk());
  auto row = (*db)->Prepare("SELECT slurm_job_id, slurm_node FROM workers WHERE worker_id='w1'");
  ASSERT_THAT(row.status(), IsOk());
  ASSERT_TRUE(*(*row)->Step());
  EXPECT_EQ((*row)->Text(0), "4242_3");
  EXPECT_EQ((*row)->Text(1), "gpu-node-07");
}

TEST_F(SchedulerTest, RegisterWorker_BadSlurmNode_InvalidArgument) {
  v1::RegisterWorkerRequest w = MakeWorker("w1");
  w.set_slurm_node("node 1; DROP");
  EXPECT_THAT(scheduler_->RegisterWorker(w).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("slurm_node")));
}

TEST_F(SchedulerTest, Resubmit_ReusesDoneJobs_ForceReruns) {
  Submit("s", {MakeJob("a"), MakeJob("b")});
  Register("w1");
  auto lease = LeaseFor("w1");
  ASSERT_TRUE(lease.has_value());
  ASSERT_THAT(Report(lease->lease_token(), {0, 1, 2, 3}).status(), IsOk());
  ASSERT_THAT(Complete(lease->lease_token()), IsOk());
  // Another sweep overlapping one done and one queued job: nothing new runs.
  int64_t other = Submit("other", {MakeJob("a"), MakeJob("b")});
  EXPECT_EQ(last_submit_.jobs_queued(), 0);
  EXPECT_EQ(last_submit_.jobs_reused(), 2);
  EXPECT_EQ(GetSweep(other).counts().done(), 1);
  Submit("other", {MakeJob("a")}, /*force=*/true);
  EXPECT_EQ(last_submit_.jobs_queued(), 1);
  EXPECT_EQ(CountResults(), 0);
  EXPECT_EQ(GetSweep(other).state(), v1::SWEEP_STATE_RUNNING);
}

TEST_F(SchedulerTest, SharedJob_CompletingItFinishesBothSweeps) {
  int64_t s1 = Submit("s1", {MakeJob("a")});
  int64_t s2 = Submit("s2", {MakeJob("a")});
  Register("w1");
  auto lease = LeaseFor("w1");
  ASSERT_TRUE(lease.has_value());
  EXPECT_FALSE(LeaseFor("w1").has_value());
  ASSERT_THAT(Complete(lease->lease_token()), IsOk());
  EXPECT_EQ(GetSweep(s1).state(), v1::SWEEP_STATE_FINISHED);
  EXPECT_EQ(GetSweep(s2).state(), v1::SWEEP_STATE_FINISHED);
}

TEST_F(SchedulerTest, Cancel_LeasedJobToldAtHeartbeat_QueuedJobsNotLeased) {
  int64_t id = Submit("s", {MakeJob("a", {.cost = 2}), MakeJob("b")});
  Register("w1");
  auto lease = LeaseFor("w1");
  ASSERT_TRUE(lease.has_value());
  v1::CancelSweepRequest c;
  c.set_sweep_id(id);
  auto resp = scheduler_->CancelSweep(c);
  ASSERT_THAT(resp.status(), IsOk());
  EXPECT_EQ(resp->jobs_cancelled(), 2);
  EXPECT_FALSE(LeaseFor("w1").has_value());
  v1::HeartbeatRequest hb;
  hb.set_worker_id("w1");
  hb.add_leases()->set_lease_token(lease->lease_token());
  auto hb_resp = scheduler_->Heartbeat(hb);
  ASSERT_THAT(hb_resp.status(), IsOk());
  ASSERT_EQ(hb_resp->stop_size(), 1);
  EXPECT_EQ(hb_resp->stop(0).reason(), v1::STOP_REASON_CANCELLED);
  EXPECT_THAT(Complete(lease->lease_token()), StatusIs(absl::StatusCode::kAborted, ::testing::_));
  v1::Sweep sweep = GetSweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_CANCELLED);
  EXPECT_EQ(sweep.counts().cancelled(), 2);
}

TEST_F(SchedulerTest, Cancel_JobSharedWithRunningSweep_KeepsRunning) {
  int64_t s1 = Submit("s1", {MakeJob("a"), MakeJob("only1")});
  Submit("s2", {MakeJob("a")});
  v1::CancelSweepRequest c;
  c.set_sweep_id(s1);
  auto resp = scheduler_->CancelSweep(c);
  ASSERT_THAT(resp.status(), IsOk());
  EXPECT_EQ(resp->jobs_cancelled(), 1);
  Register("w1");
  auto lease = LeaseFor("w1");
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->job().key(), "a");
}

TEST_F(SchedulerTest, RetryFailed_RequeuesWithFreshAttempts) {
  int64_t id = Submit("s", {MakeJob("a")});
  Register("w1");
  auto lease = LeaseFor("w1");
  ASSERT_TRUE(lease.has_value());
  v1::FailRequest f;
  f.set_lease_token(lease->lease_token());
  f.set_error("unsupported");
  f.set_permanent(true);
  ASSERT_THAT(scheduler_->Fail(f).status(), IsOk());
  EXPECT_EQ(GetSweep(id).state(), v1::SWEEP_STATE_FINISHED);
  v1::RetryFailedRequest r;
  r.set_sweep_id(id);
  auto resp = scheduler_->RetryFailed(r);
  ASSERT_THAT(resp.status(), IsOk());
  EXPECT_EQ(resp->jobs_requeued(), 1);
  EXPECT_EQ(GetSweep(id).state(), v1::SWEEP_STATE_RUNNING);
  auto again = LeaseFor("w1");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->attempt(), 1);
}

TEST_F(SchedulerTest, Events_SequenceIncreasesAndCursorResumes) {
  int64_t id = Submit("s", {MakeJob("a")});
  Register("w1");
  auto lease = LeaseFor("w1");
  ASSERT_TRUE(lease.has_value());
  ASSERT_THAT(Complete(lease->lease_token()), IsOk());
  auto all = scheduler_->ReadEvents(id, 0, 100);
  ASSERT_THAT(all.status(), IsOk());
  std::vector<int> kinds;
  for (size_t i = 0; i < all->size(); ++i) {
    kinds.push_back((*all)[i].kind());
    if (i > 0) {
      EXPECT_GT((*all)[i].sequence(), (*all)[i - 1].sequence());
    }
  }
  EXPECT_THAT(kinds, ElementsAre(v1::EVENT_KIND_SWEEP_SUBMITTED, v1::EVENT_KIND_JOB_LEASED,
                                 v1::EVENT_KIND_JOB_DONE, v1::EVENT_KIND_SWEEP_FINISHED));
  auto rest = scheduler_->ReadEvents(id, (*all)[1].sequence(), 100);
  ASSERT_THAT(rest.status(), IsOk());
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ(rest->front().kind(), v1::EVENT_KIND_JOB_DONE);
  EXPECT_EQ(rest->back().counts().done(), 1);
}

TEST_F(SchedulerTest, Results_FiltersOnAxes) {
  Submit("s", {MakeJob("a", {.model = "x", .sequence_length = 1000, .compression = 5}),
               MakeJob("b", {.model = "y", .sequence_length = 2000, .compression = 10}),
               MakeJob("c", {.model = "x", .sequence_length = 2000, .compression = 20})});
  Register("w1");
  while (auto lease = LeaseFor("w1")) {
    ASSERT_THAT(Complete(lease->lease_token()), IsOk());
  }
  auto keys = [&](const v1::ResultsRequest& r) {
    std::set<std::string> out;
    EXPECT_THAT(scheduler_->Results(r,
                                    [&](v1::ResultsResponse& page) {
                                      for (auto& row : page.rows()) out.insert(row.job().key());
                                      return true;
                                    }),
                IsOk());
    return out;
  };
  v1::ResultsRequest r;
  r.add_models("x");
  EXPECT_EQ(keys(r), (std::set<std::string>{"a", "c"}));
  r.add_sequence_lengths(2000);
  EXPECT_EQ(keys(r), (std::set<std::string>{"c"}));
  v1::ResultsRequest by_compression;
  by_compression.set_min_compression(8);
  by_compression.set_max_compression(15);
  EXPECT_EQ(keys(by_compression), (std::set<std::string>{"b"}));
}

TEST_F(SchedulerTest, Results_FiltersOnMethodInEitherPhaseAndExactCompressions) {
  v1::JobSpec b = MakeJob("b");
  b.mutable_decode()->set_name("snapkv");
  b.mutable_decode()->set_compression(8);
  Submit("s", {MakeJob("a", {.method = "quest", .compression = 5}), b, MakeJob("c")});
  Register("w1");
  while (auto lease = LeaseFor("w1")) {
    ASSERT_THAT(Complete(lease->lease_token()), IsOk());
  }
  auto keys = [&](std::vector<std::string> methods, std::vector<double> compressions) {
    v1::ResultsRequest r;
    for (const auto& m : methods) r.add_methods(m);
    for (double c : compressions) r.add_compressions(c);
    std::set<std::string> out;
    EXPECT_THAT(scheduler_->Results(r,
                                    [&](v1::ResultsResponse& page) {
                                      for (auto& row : page.rows()) out.insert(row.job().key());
                                      return true;
                                    }),
                IsOk());
    return out;
  };
  using Keys = std::set<std::string>;
  EXPECT_EQ(keys({"quest"}, {}), (Keys{"a"}));
  EXPECT_EQ(keys({"snapkv"}, {}), (Keys{"b"}));  // decode phase
  EXPECT_EQ(keys({"snapkv", "quest"}, {}), (Keys{"a", "b"}));
  EXPECT_EQ(keys({"dense"}, {}), (Keys{"a", "b", "c"}));  // dense in one phase each
  EXPECT_EQ(keys({"nope"}, {}), Keys{});
  EXPECT_EQ(keys({}, {1, 8}), (Keys{"b", "c"}));  // dense counts as 1
  EXPECT_EQ(keys({"quest"}, {8}), Keys{});
  EXPECT_EQ(keys({"snapkv"}, {8}), (Keys{"b"}));
}

// Many concurrent callers share commits (group commit), yet each call's effect is
// committed before it returns: another connection sees it at once, and a restart
// keeps exactly one result per job.
TEST_F(SchedulerTest, GroupCommit_ConcurrentCallsAreCommittedBeforeTheyReturn) {
  constexpr int kJobs = 240;
  constexpr int kThreads = 8;
  std::vector<v1::JobSpec> jobs;
  for (int i = 0; i < kJobs; ++i) jobs.push_back(MakeJob(absl::StrCat("j", i)));
  const int64_t id = Submit("s", jobs);
  std::atomic<int> completed{0};
  std::atomic<int> invisible{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    Register(absl::StrCat("w", t));
    threads.emplace_back([&, t] {
      auto reader = Database::OpenReadOnly(db_.path());
      ASSERT_THAT(reader.status(), IsOk());
      auto seen = (*reader)->Prepare("SELECT COUNT(*) FROM results WHERE lease_token=?");
      ASSERT_THAT(seen.status(), IsOk());
      v1::LeaseRequest lr;
      lr.set_worker_id(absl::StrCat("w", t));
      while (true) {
        auto lease = scheduler_->Lease(lr);
        ASSERT_THAT(lease.status(), IsOk());
        if (!lease->has_lease()) break;
        const std::string& token = lease->lease().lease_token();
        ASSERT_THAT(Report(token, {0, 1, 2, 3}).status(), IsOk());
        ASSERT_THAT(Complete(token), IsOk());
        ++completed;
        (*seen)->Bind(1, token);
        auto row = (*seen)->Step();
        if (!row.ok() || !*row || (*seen)->Int(0) != 1) ++invisible;
        (*seen)->Reset();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(completed.load(), kJobs);
  EXPECT_EQ(invisible.load(), 0);
  // Every lease, report and complete was carried by some commit.
  const Scheduler::CommitStats stats = scheduler_->commit_stats();
  EXPECT_GE(stats.calls, 3 * kJobs);
  EXPECT_GE(stats.calls, stats.commits);
  Reopen();
  v1::Sweep sweep = GetSweep(id);
  EXPECT_EQ(sweep.counts().done(), kJobs);
  EXPECT_EQ(sweep.counts().samples_done(), 4 * kJobs);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_FINISHED);
  EXPECT_EQ(CountResults(), kJobs);
}

TEST_F(SchedulerTest, Restart_LeaseSurvivesAndExpiredLeaseRequeues) {
  int64_t id = Submit("s", {MakeJob("a", {.cost = 2}), MakeJob("b")});
  Register("w1");
  auto a = LeaseFor("w1");
  auto b = LeaseFor("w1");
  ASSERT_TRUE(a.has_value() && b.has_value());
  ASSERT_THAT(Report(a->lease_token(), {0, 1}).status(), IsOk());
  // Every change is committed: closing without any shutdown step is what SIGKILL
  // leaves behind.
  Reopen();
  clock_.Advance(absl::Seconds(40));
  v1::HeartbeatRequest hb;
  hb.set_worker_id("w1");
  hb.add_leases()->set_lease_token(a->lease_token());
  ASSERT_THAT(scheduler_->Heartbeat(hb).status(), IsOk());
  clock_.Advance(absl::Seconds(40));
  EXPECT_EQ(*scheduler_->ExpireLeases(), 1);  // b: its worker never came back
  ASSERT_THAT(Report(a->lease_token(), {2, 3}).status(), IsOk());
  ASSERT_THAT(Complete(a->lease_token()), IsOk());
  v1::Sweep sweep = GetSweep(id);
  EXPECT_EQ(sweep.counts().done(), 1);
  EXPECT_EQ(sweep.counts().queued(), 1);
  EXPECT_EQ(sweep.counts().samples_done(), 4);
}

// ---- hardening: each test below failed before its fix.

TEST_F(SchedulerTest, Complete_WithSamplesMissing_ShortfallRecordedAndResubmitResumes) {
  const int64_t id = Submit("short", {MakeJob("a", {.samples = 4})});
  Register("w1");
  auto lease = LeaseFor("w1");
  ASSERT_TRUE(lease.has_value());
  ASSERT_THAT(Report(lease->lease_token(), {0}).status(), IsOk());
  v1::CompleteRequest complete;  // without samples 1-3
  complete.set_lease_token(lease->lease_token());
  complete.mutable_result()->set_metric("accuracy");
  ASSERT_THAT(scheduler_->Complete(complete).status(), IsOk());
  auto events = scheduler_->ReadEvents(id, 0, 1000);
  ASSERT_THAT(events.status(), IsOk());
  std::string done_message;
  for (const auto& e : *events) {
    if (e.kind() == v1::EVENT_KIND_JOB_DONE) done_message = e.message();
  }
  EXPECT_THAT(done_message, HasSubstr("1 of 4 samples"));
  // Resubmitting runs the missing samples instead of reusing the short result.
  Submit("short", {MakeJob("a", {.samples = 4})});
  EXPECT_EQ(last_submit_.jobs_queued(), 1);
  EXPECT_EQ(last_submit_.jobs_reused(), 0);
  auto again = LeaseFor("w1");
  ASSERT_TRUE(again.has_value());
  EXPECT_THAT(again->samples_done(), ElementsAre(0));
  ASSERT_THAT(Report(again->lease_token(), {1, 2, 3}).status(), IsOk());
  ASSERT_THAT(Complete(again->lease_token()), IsOk());
  EXPECT_EQ(CountResults(), 1);
  Submit("short", {MakeJob("a", {.samples = 4})});
  EXPECT_EQ(last_submit_.jobs_reused(), 1);
}

// SplitMix64's finalizer and its inverse: what an attacker who knows the generator runs.
uint64_t SplitMixForward(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
uint64_t UndoXorShift(uint64_t y, int shift) {
  uint64_t x = y;
  for (int i = 0; i < 64 / shift + 1; ++i) x = y ^ (x >> shift);
  return x;
}
uint64_t InverseOdd(uint64_t a) {
  uint64_t x = a;  // Newton: each step doubles the correct low bits
  for (int i = 0; i < 6; ++i) x *= 2 - a * x;
  return x;
}
uint64_t SplitMixBackward(uint64_t z) {
  z = UndoXorShift(z, 31) * InverseOdd(0x94d049bb133111ebULL);
  z = UndoXorShift(z, 27) * InverseOdd(0xbf58476d1ce4e5b9ULL);
  return UndoXorShift(z, 30) - 0x9e3779b97f4a7c15ULL;
}

TEST_F(SchedulerTest, LeaseTokens_NotPredictableFromAnEarlierToken) {
  Submit("tokens", {MakeJob("a"), MakeJob("b")});
  Register("w1");
  auto first = LeaseFor("w1");
  auto second = LeaseFor("w1");
  ASSERT_TRUE(first.has_value() && second.has_value());
  const std::string& t1 = first->lease_token();
  ASSERT_EQ(t1.size(), 32u);
  EXPECT_EQ(second->lease_token().size(), 32u);
  const uint64_t a = std::stoull(t1.substr(0, 16), nullptr, 16);
  const uint64_t b = std::stoull(t1.substr(16), nullptr, 16);
  ASSERT_EQ(SplitMixForward(SplitMixBackward(a)), a);
  // A counter-based generator: a = f(seed + n), b = f(a ^ seed).
  const uint64_t seed = a ^ SplitMixBackward(b);
  const uint64_t next_a = SplitMixForward(SplitMixBackward(a) + 1);
  const uint64_t next_b = SplitMixForward(next_a ^ seed);
  const std::string predicted =
      absl::StrCat(absl::Hex(next_a, absl::kZeroPad16), absl::Hex(next_b, absl::kZeroPad16));
  EXPECT_NE(second->lease_token(), predicted);
}

TEST_F(SchedulerTest, Reads_WhileWritesFail_StillAnswer) {
  const int64_t id = Submit("reads", {MakeJob("a")});
  Register("w1");
  ASSERT_TRUE(LeaseFor("w1").has_value());
  clock_.Advance(absl::Seconds(61));  // the lease expired; nobody has noticed yet
  // Another connection holds the write lock: every write of the scheduler fails, as
  // on a full disk.
  auto other = Database::OpenWriter(db_.path());
  ASSERT_THAT(other.status(), IsOk());
  ASSERT_THAT((*other)->Exec("BEGIN IMMEDIATE"), IsOk());
  v1::GetSweepRequest get;
  get.set_id(id);
  EXPECT_THAT(scheduler_->GetSweep(get).status(), IsOk());
  v1::ListSweepsRequest list;
  list.set_include_finished(true);
  EXPECT_THAT(scheduler_->ListSweeps(list).status(), IsOk());
  EXPECT_THAT(scheduler_->ListWorkers(v1::ListWorkersRequest()).status(), IsOk());
  ASSERT_THAT((*other)->Exec("ROLLBACK"), IsOk());
  EXPECT_EQ(*scheduler_->ExpireLeases(), 1);
}

TEST_F(SchedulerTest, ForceResubmit_SharedJob_OtherSweepRecounted) {
  const int64_t one = Submit("one", {MakeJob("a")});
  const int64_t two = Submit("two", {MakeJob("a"), MakeJob("b")});
  Register("w1");
  auto lease = LeaseFor("w1");
  ASSERT_TRUE(lease.has_value());
  ASSERT_EQ(lease->job().key(), "a");
  ASSERT_THAT(Report(lease->lease_token(), {0, 1, 2, 3}).status(), IsOk());
  ASSERT_THAT(Complete(lease->lease_token()), IsOk());
  EXPECT_EQ(GetSweep(two).counts().samples_done(), 4);
  Submit("one", {MakeJob("a")}, /*force=*/true);  // drops a's samples and result
  const v1::Sweep other = GetSweep(two);
  EXPECT_EQ(other.counts().samples_done(), 0);
  EXPECT_EQ(other.counts().done(), 0);
  EXPECT_EQ(other.counts().queued(), 2);
  EXPECT_EQ(GetSweep(one).counts().samples_done(), 0);
}

TEST_F(SchedulerTest, Lease_AbandonedPoll_GrantsNothingAndTheJobStaysQueued) {
  const int64_t id = Submit("s", {MakeJob("a")});
  Register("w1");
  v1::LeaseRequest request;
  request.set_worker_id("w1");
  request.set_wait_ms(60000);  // answered at once all the same: the poll was abandoned
  int asked = 0;
  auto response = scheduler_->Lease(request, [&asked] {
    ++asked;
    return true;
  });
  ASSERT_THAT(response.status(), IsOk());
  EXPECT_FALSE(response->has_lease());
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(GetSweep(id).counts().queued(), 1);
  EXPECT_EQ(GetSweep(id).counts().leased(), 0);
  // The next poll that is still wanted gets the job.
  EXPECT_TRUE(LeaseFor("w1").has_value());
}

TEST_F(SchedulerTest, Cancel_FinishedSweep_StaysFinished) {
  const int64_t id = Submit("done", {MakeJob("a", {.samples = 1})});
  Register("w1");
  auto lease = LeaseFor("w1");
  ASSERT_TRUE(lease.has_value());
  ASSERT_THAT(Report(lease->lease_token(), {0}).status(), IsOk());
  ASSERT_THAT(Complete(lease->lease_token()), IsOk());
  v1::CancelSweepRequest cancel;
  cancel.set_sweep_id(id);
  auto response = scheduler_->CancelSweep(cancel);
  ASSERT_THAT(response.status(), IsOk());
  EXPECT_EQ(response->jobs_cancelled(), 0);
  EXPECT_EQ(GetSweep(id).state(), v1::SWEEP_STATE_FINISHED);
}

TEST_F(SchedulerTest, ReportSamples_JobWithoutSamples_EveryIndexOutOfRange) {
  Submit("empty", {MakeJob("a", {.samples = 0})});
  Register("w1");
  auto lease = LeaseFor("w1");
  ASSERT_TRUE(lease.has_value());
  EXPECT_THAT(Report(lease->lease_token(), {0}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("out of range")));
}

TEST_F(SchedulerTest, Submit_CompressionBelowOne_InvalidArgumentNamingTheField) {
  v1::SubmitSweepRequest r;
  r.set_sweep_name("neg");
  *r.add_jobs() = MakeJob("a", {.compression = 2});
  r.mutable_jobs(0)->mutable_prefill()->set_compression(-5);
  EXPECT_THAT(scheduler_->SubmitSweep(r).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("prefill.compression")));
  r.mutable_jobs(0)->mutable_prefill()->set_compression(2);
  r.mutable_jobs(0)->mutable_decode()->set_compression(0.5);
  EXPECT_THAT(scheduler_->SubmitSweep(r).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("decode.compression")));
}

TEST_F(SchedulerTest, TextFieldsOverTheirLimit_InvalidArgumentNamingTheField) {
  v1::SubmitSweepRequest submit;
  submit.set_sweep_name("big");
  *submit.add_jobs() = MakeJob("a");
  *submit.add_jobs() = MakeJob("b");
  submit.mutable_jobs(1)->mutable_model()->set_path(std::string(10 << 20, 'p'));
  EXPECT_THAT(scheduler_->SubmitSweep(submit).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("jobs[1].model.path")));
  submit.mutable_jobs(1)->mutable_model()->set_path("/models/m");
  submit.set_spec_yaml(std::string(100 << 20, 's'));
  EXPECT_THAT(scheduler_->SubmitSweep(submit).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("spec_yaml")));

  v1::RegisterWorkerRequest worker = MakeWorker("w1");
  worker.set_hostname(std::string(10 << 20, 'h'));
  EXPECT_THAT(scheduler_->RegisterWorker(worker).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hostname")));
  worker = MakeWorker("w1");
  worker.add_methods(std::string(8192, 'm'));
  EXPECT_THAT(scheduler_->RegisterWorker(worker).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("methods[0]")));

  Submit("ok", {MakeJob("c")});
  Register("w1");
  auto lease = LeaseFor("w1");
  ASSERT_TRUE(lease.has_value());
  v1::CompleteRequest complete;
  complete.set_lease_token(lease->lease_token());
  complete.mutable_result()->set_gpu_name(std::string(1 << 20, 'g'));
  EXPECT_THAT(scheduler_->Complete(complete).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("result.gpu_name")));
  v1::HeartbeatRequest heartbeat;
  heartbeat.set_worker_id("w1");
  heartbeat.add_loaded_models(std::string(1 << 20, 'x'));
  EXPECT_THAT(scheduler_->Heartbeat(heartbeat).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("loaded_models[0]")));
}

TEST(SchedulerOpenTest, CorruptDatabase_RefusedWithRecoverySteps) {
  TempDb db;
  FakeClock clock;
  {
    auto s = Scheduler::Open(db.path(), &clock);
    ASSERT_THAT(s.status(), IsOk());
    v1::SubmitSweepRequest r;
    r.set_sweep_name("s");
    for (int i = 0; i < 50; ++i) *r.add_jobs() = MakeJob(absl::StrCat("job", i));
    ASSERT_THAT((*s)->SubmitSweep(r).status(), IsOk());
  }
  int64_t page = 0, page_size = 0;
  {
    auto raw = Database::OpenWriter(db.path());
    ASSERT_THAT(raw.status(), IsOk());
    auto st = (*raw)->Prepare(
        "SELECT rootpage FROM sqlite_schema WHERE type='index' AND tbl_name='jobs' "
        "ORDER BY rootpage DESC LIMIT 1");
    ASSERT_THAT(st.status(), IsOk());
    ASSERT_TRUE(*(*st)->Step());
    page = (*st)->Int(0);
    auto size = (*raw)->Prepare("PRAGMA page_size");
    ASSERT_TRUE(*(*size)->Step());
    page_size = (*size)->Int(0);
    (*st)->Reset();
    (*size)->Reset();
    ASSERT_THAT((*raw)->Exec("PRAGMA wal_checkpoint(TRUNCATE)"), IsOk());
  }
  {
    // Scribble over one index page, as a failing disk or a copy made mid-write would.
    std::fstream file(db.path(), std::ios::in | std::ios::out | std::ios::binary);
    file.seekp((page - 1) * page_size + 8);
    const std::string junk(page_size - 16, '\x5a');
    file.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto reopened = Scheduler::Open(db.path(), &clock);
  EXPECT_THAT(reopened.status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("integrity")));
  EXPECT_THAT(reopened.status().message(), HasSubstr(".recover"));
  EXPECT_THAT(reopened.status().message(), HasSubstr(db.path()));
}

}  // namespace
}  // namespace sf::coordinator
