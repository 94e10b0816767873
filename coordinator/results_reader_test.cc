// The read side: Results with unfinished jobs, per-sample scores, state filters and
// errors (through the scheduler), and DatabaseResults on a database file.
#include "coordinator/results_reader.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/testing/status_matchers.h"
#include "coordinator/scheduler.h"
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
using testing::MakeJob;
using testing::MakeSample;
using testing::MakeWorker;
using ::testing::SizeIs;
using testing::TempDb;

std::vector<v1::ResultRow> Collect(ResultsSource& source, const v1::ResultsRequest& request) {
  std::vector<v1::ResultRow> rows;
  EXPECT_THAT(source.Results(request,
                             [&rows](v1::ResultsResponse& page) {
                               for (const v1::ResultRow& r : page.rows()) rows.push_back(r);
                               return true;
                             }),
              IsOk());
  return rows;
}

std::vector<int> Indices(const v1::ResultRow& row) {
  std::vector<int> out;
  for (const v1::SampleResult& s : row.samples()) out.push_back(s.index());
  return out;
}

// The scheduler, as a ResultsSource, so both sides run the same checks.
class SchedulerSource : public ResultsSource {
 public:
  explicit SchedulerSource(Scheduler* s) : s_(s) {}
  absl::StatusOr<v1::Sweep> GetSweep(const v1::GetSweepRequest& r) override {
    return s_->GetSweep(r);
  }
  absl::StatusOr<v1::ListSweepsResponse> ListSweeps(const v1::ListSweepsRequest& r) override {
    return s_->ListSweeps(r);
  }
  absl::Status Results(const v1::ResultsRequest& r, const ResultsSink& sink) override {
    return s_->Results(r, sink);
  }

 private:
  Scheduler* s_;
};

// Sweep "s" of three jobs: a done (samples 0 and 2, reported out of order), b failed
// for good after storing sample 1, c still queued.
class ResultsReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Scheduler::Open(db_.path(), &clock_);
    ASSERT_THAT(s.status(), IsOk());
    scheduler_ = std::move(*s);
    v1::SubmitSweepRequest submit;
    submit.set_sweep_name("s");
    for (const char* key : {"a", "b", "c"}) {
      v1::JobSpec job = MakeJob(key);
      job.set_cost(key[0] == 'c' ? 0 : 10);  // c is leased last
      *submit.add_jobs() = job;
    }
    ASSERT_THAT(scheduler_->SubmitSweep(submit).status(), IsOk());
    ASSERT_THAT(scheduler_->RegisterWorker(MakeWorker("w")).status(), IsOk());
    for (int job = 0; job < 2; ++job) {
      v1::LeaseRequest lease_request;
      lease_request.set_worker_id("w");
      auto lease = scheduler_->Lease(lease_request);
      ASSERT_THAT(lease.status(), IsOk());
      ASSERT_TRUE(lease->has_lease());
      const std::string token = lease->lease().lease_token();
      const bool done = lease->lease().job().key() == "a";
      v1::ReportSamplesRequest samples;
      samples.set_lease_token(token);
      for (int i : done ? std::vector<int>{2, 0} : std::vector<int>{1}) {
        v1::SampleResult sample = MakeSample(i, 0.25 * (i + 1));
        sample.set_output_tokens(10 + i);
        *samples.add_samples() = sample;
      }
      ASSERT_THAT(scheduler_->ReportSamples(samples).status(), IsOk());
      if (done) {
        v1::CompleteRequest complete;
        complete.set_lease_token(token);
        complete.mutable_result()->set_metric("accuracy");
        complete.mutable_result()->mutable_model_shape()->set_hidden(64);
        ASSERT_THAT(scheduler_->Complete(complete).status(), IsOk());
      } else {
        v1::FailRequest fail;
        fail.set_lease_token(token);
        fail.set_error("boom");
        fail.set_permanent(true);
        ASSERT_THAT(scheduler_->Fail(fail).status(), IsOk());
      }
    }
  }

  TempDb db_;
  FakeClock clock_;
  std::unique_ptr<Scheduler> scheduler_;
};

void ExpectSweepRows(ResultsSource& source) {
  v1::ResultsRequest only_done;
  only_done.set_sweep_id(1);
  std::vector<v1::ResultRow> done = Collect(source, only_done);
  ASSERT_THAT(done, SizeIs(1));
  EXPECT_EQ(done[0].job().key(), "a");
  EXPECT_TRUE(done[0].has_result());
  EXPECT_TRUE(done[0].samples().empty());  // only when asked for

  v1::ResultsRequest all = only_done;
  all.set_include_unfinished(true);
  all.set_include_samples(true);
  std::vector<v1::ResultRow> rows = Collect(source, all);
  ASSERT_THAT(rows, SizeIs(3));
  EXPECT_EQ(rows[0].job().key(), "a");
  EXPECT_EQ(rows[0].state(), v1::JOB_STATE_DONE);
  EXPECT_EQ(rows[0].result().model_shape().hidden(), 64);
  EXPECT_EQ(rows[0].result().n(), 2);
  EXPECT_THAT(Indices(rows[0]), ElementsAre(0, 2));
  EXPECT_DOUBLE_EQ(rows[0].samples(1).score(), 0.75);
  EXPECT_EQ(rows[0].samples(1).output_tokens(), 12);
  EXPECT_EQ(rows[0].samples(1).prediction(), "");  // text only when asked for
  EXPECT_EQ(rows[1].job().key(), "b");
  EXPECT_EQ(rows[1].state(), v1::JOB_STATE_FAILED);
  EXPECT_FALSE(rows[1].has_result());
  EXPECT_THAT(rows[1].last_error(), HasSubstr("boom"));
  EXPECT_THAT(Indices(rows[1]), ElementsAre(1));
  EXPECT_EQ(rows[2].job().key(), "c");
  EXPECT_EQ(rows[2].state(), v1::JOB_STATE_QUEUED);
  EXPECT_TRUE(rows[2].samples().empty());

  v1::ResultsRequest failed = all;
  failed.add_states(v1::JOB_STATE_FAILED);
  failed.set_include_sample_text(true);
  std::vector<v1::ResultRow> failed_rows = Collect(source, failed);
  ASSERT_THAT(failed_rows, SizeIs(1));
  EXPECT_EQ(failed_rows[0].job().key(), "b");
  EXPECT_EQ(failed_rows[0].samples(0).prediction(), "p");
  EXPECT_EQ(failed_rows[0].samples(0).target(), "t");
}

TEST_F(ResultsReaderTest, Scheduler_UnfinishedJobsSamplesAndStates) {
  SchedulerSource source(scheduler_.get());
  ExpectSweepRows(source);
}

TEST_F(ResultsReaderTest, DatabaseFile_AnswersAsTheScheduler) {
  SF_ASSERT_OK_AND_ASSIGN(auto file, DatabaseResults::Open(db_.path()));
  ExpectSweepRows(*file);
  v1::GetSweepRequest by_name;
  by_name.set_name("s");
  SF_ASSERT_OK_AND_ASSIGN(v1::Sweep sweep, file->GetSweep(by_name));
  EXPECT_EQ(sweep.id(), 1);
  EXPECT_EQ(sweep.counts().total(), 3);
  EXPECT_EQ(sweep.counts().done(), 1);
  EXPECT_EQ(sweep.counts().failed(), 1);
  EXPECT_EQ(sweep.counts().queued(), 1);
  v1::GetSweepRequest by_id;
  by_id.set_id(7);
  EXPECT_THAT(file->GetSweep(by_id), StatusIs(absl::StatusCode::kNotFound, HasSubstr("7")));
  v1::ListSweepsRequest list;
  list.set_include_finished(true);
  SF_ASSERT_OK_AND_ASSIGN(v1::ListSweepsResponse sweeps, file->ListSweeps(list));
  ASSERT_THAT(sweeps.sweeps(), SizeIs(1));
  EXPECT_EQ(sweeps.sweeps(0).name(), "s");
}

// newest_first: rows by the job's last state change, newest first, whatever the job ids;
// the default stays job id order.
TEST(ResultsNewestFirst, FailedJobsInTheOrderTheyFailed) {
  TempDb db;
  FakeClock clock;
  SF_ASSERT_OK_AND_ASSIGN(auto scheduler, Scheduler::Open(db.path(), &clock));
  v1::SubmitSweepRequest submit;
  submit.set_sweep_name("s");
  for (const char* key : {"x", "y", "z"}) *submit.add_jobs() = MakeJob(key);
  ASSERT_THAT(scheduler->SubmitSweep(submit).status(), IsOk());
  ASSERT_THAT(scheduler->RegisterWorker(MakeWorker("w")).status(), IsOk());
  std::map<std::string, std::string> tokens;
  for (int i = 0; i < 3; ++i) {
    v1::LeaseRequest lease_request;
    lease_request.set_worker_id("w");
    SF_ASSERT_OK_AND_ASSIGN(v1::LeaseResponse lease, scheduler->Lease(lease_request));
    ASSERT_TRUE(lease.has_lease());
    tokens[lease.lease().job().key()] = lease.lease().lease_token();
  }
  ASSERT_THAT(tokens, SizeIs(3));
  for (const char* key : {"z", "x", "y"}) {
    clock.Advance(absl::Seconds(1));
    v1::FailRequest fail;
    fail.set_lease_token(tokens[key]);
    fail.set_error(absl::StrCat("failed ", key));
    fail.set_permanent(true);
    ASSERT_THAT(scheduler->Fail(fail).status(), IsOk());
  }
  auto keys = [](const std::vector<v1::ResultRow>& rows) {
    std::vector<std::string> out;
    for (const v1::ResultRow& r : rows) out.push_back(r.job().key());
    return out;
  };
  v1::ResultsRequest request;
  request.set_sweep_id(1);
  request.set_include_unfinished(true);
  request.add_states(v1::JOB_STATE_FAILED);
  SchedulerSource source(scheduler.get());
  EXPECT_THAT(keys(Collect(source, request)), ElementsAre("x", "y", "z"));
  request.set_newest_first(true);
  EXPECT_THAT(keys(Collect(source, request)), ElementsAre("y", "x", "z"));
  request.set_limit(2);
  EXPECT_THAT(keys(Collect(source, request)), ElementsAre("y", "x"));
  SF_ASSERT_OK_AND_ASSIGN(auto file, DatabaseResults::Open(db.path()));
  EXPECT_THAT(keys(Collect(*file, request)), ElementsAre("y", "x"));
}

TEST(DatabaseResults, MissingOrForeignFile_ClearErrors) {
  TempDb db;
  EXPECT_THAT(DatabaseResults::Open(db.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(db.path())));
  {
    SF_ASSERT_OK_AND_ASSIGN(auto other, Database::OpenWriter(db.path()));
    ASSERT_THAT(other->Exec("CREATE TABLE notes (text TEXT)"), IsOk());
  }
  EXPECT_THAT(DatabaseResults::Open(db.path()), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                         HasSubstr("not a coordinator database")));
}

}  // namespace
}  // namespace sf::coordinator
