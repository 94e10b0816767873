// Property test: random and malformed requests never crash the handlers, and the
// scheduler's counters stay consistent with its jobs whatever was thrown at it.
#include <random>

#include "common/clock.h"
#include "common/testing/status_matchers.h"
#include "coordinator/scheduler.h"
#include "coordinator/testing/test_jobs.h"
#include "gtest/gtest.h"

namespace sf::coordinator {
namespace {

using ::sf::testing::IsOk;

class Fuzzer {
 public:
  explicit Fuzzer(uint64_t seed) : rng_(seed) {}

  std::string Bytes(size_t max) {
    std::string s(Int(0, static_cast<int64_t>(max)), '\0');
    for (char& c : s) c = static_cast<char>(Int(0, 255));
    return s;
  }
  int64_t Int(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  double Double() {
    switch (Int(0, 5)) {
      case 0:
        return std::nan("");
      case 1:
        return std::numeric_limits<double>::infinity();
      case 2:
        return -1;
      default:
        return std::uniform_real_distribution<double>(0, 100)(rng_);
    }
  }
  std::string Text() {
    switch (Int(0, 4)) {
      case 0:
        return "";
      case 1:
        return Bytes(40);
      case 2:
        return std::string(Int(200, 400), 'k');
      default:
        return absl::StrCat("k", Int(0, 20));
    }
  }
  std::string Token() { return tokens_.empty() || Int(0, 3) == 0 ? Text() : tokens_[Int(0, tokens_.size() - 1)]; }
  std::vector<std::string> tokens_;

 private:
  std::mt19937_64 rng_;
};

TEST(FuzzTest, RandomRequests_NeverCrash_CountersConsistent) {
  testing::TempDb db;
  FakeClock clock;
  SchedulerOptions options;
  options.lease_ttl = absl::Seconds(30);
  auto opened = Scheduler::Open(db.path(), &clock, options);
  ASSERT_THAT(opened.status(), IsOk());
  Scheduler& s = **opened;
  Fuzzer f(42);
  for (int step = 0; step < 1500; ++step) {
    switch (f.Int(0, 11)) {
      case 0: {  // structured but hostile jobs
        v1::SubmitSweepRequest r;
        r.set_sweep_name(f.Int(0, 3) ? absl::StrCat("s", f.Int(0, 3)) : f.Text());
        r.set_force(f.Int(0, 4) == 0);
        r.set_priority(static_cast<int32_t>(f.Int(-5, 5)));
        r.set_max_attempts(static_cast<int32_t>(f.Int(-1, 3)));
        const bool clean = f.Int(0, 1) == 0;
        for (int i = f.Int(0, 6); i > 0; --i) {
          v1::JobSpec job = testing::MakeJob(f.Text(), {.cost = f.Double(),
                                                        .memory_bytes = f.Int(-1, 1LL << 40),
                                                        .samples = static_cast<int>(f.Int(-1, 5))});
          if (f.Int(0, 5) == 0) job.mutable_model()->set_name("");
          // Half the requests are well-formed, so that leases and reports happen too.
          if (clean) job = testing::MakeJob(absl::StrCat("k", f.Int(0, 40)));
          *r.add_jobs() = job;
        }
        (void)s.SubmitSweep(r);
        break;
      }
      case 1: {  // raw bytes as a request
        v1::SubmitSweepRequest r;
        if (r.ParseFromString(f.Bytes(200))) (void)s.SubmitSweep(r);
        v1::LeaseRequest l;
        if (l.ParseFromString(f.Bytes(100))) {
          l.set_wait_ms(0);
          (void)s.Lease(l);
        }
        v1::ReportSamplesRequest rs;
        if (rs.ParseFromString(f.Bytes(200))) (void)s.ReportSamples(rs);
        v1::ResultsRequest q;
        if (q.ParseFromString(f.Bytes(100))) {
          (void)s.Results(q, [](v1::ResultsResponse&) { return true; });
        }
        break;
      }
      case 2: {
        v1::RegisterWorkerRequest w = testing::MakeWorker(
            f.Int(0, 4) ? absl::StrCat("w", f.Int(0, 3)) : f.Text(), f.Int(-1, 1LL << 37),
            static_cast<int>(f.Int(0, 3)));
        (void)s.RegisterWorker(w);
        break;
      }
      case 3:
      case 4: {
        v1::LeaseRequest l;
        l.set_worker_id(f.Int(0, 4) ? absl::StrCat("w", f.Int(0, 3)) : f.Text());
        if (f.Int(0, 2) == 0) l.add_loaded_models(absl::StrCat("id-", f.Text()));
        auto resp = s.Lease(l);
        if (resp.ok() && resp->has_lease()) f.tokens_.push_back(resp->lease().lease_token());
        break;
      }
      case 5: {
        v1::ReportSamplesRequest r;
        r.set_lease_token(f.Token());
        for (int i = f.Int(0, 5); i > 0; --i) {
          v1::SampleResult* sample = r.add_samples();
          sample->set_index(static_cast<int32_t>(f.Int(-2, 6)));
          sample->set_score(f.Double());
          sample->set_prediction(f.Text());
        }
        (void)s.ReportSamples(r);
        break;
      }
      case 6: {
        v1::CompleteRequest r;
        r.set_lease_token(f.Token());
        r.mutable_result()->set_mean(f.Double());
        r.mutable_result()->set_n(f.Int(-1, 10));
        (void)s.Complete(r);
        break;
      }
      case 7: {
        v1::FailRequest r;
        r.set_lease_token(f.Token());
        r.set_error(f.Text());
        r.set_preempted(f.Int(0, 1));
        r.set_permanent(f.Int(0, 4) == 0);
        (void)s.Fail(r);
        break;
      }
      case 8: {
        v1::HeartbeatRequest r;
        r.set_worker_id(f.Int(0, 4) ? absl::StrCat("w", f.Int(0, 3)) : f.Text());
        r.add_leases()->set_lease_token(f.Token());
        (void)s.Heartbeat(r);
        break;
      }
      case 9: {
        v1::CancelSweepRequest c;
        c.set_sweep_id(f.Int(-1, 6));
        (void)s.CancelSweep(c);
        v1::RetryFailedRequest r;
        r.set_sweep_id(f.Int(-1, 6));
        r.set_include_cancelled(f.Int(0, 1));
        (void)s.RetryFailed(r);
        break;
      }
      case 10:
        clock.Advance(absl::Seconds(f.Int(0, 40)));
        break;
      default: {
        (void)s.ReadEvents(f.Int(-1, 6), f.Int(-5, 100), static_cast<int>(f.Int(-1, 50)));
        v1::GetSweepRequest g;
        if (f.Int(0, 1)) {
          g.set_id(f.Int(-1, 6));
        } else {
          g.set_name(f.Text());
        }
        (void)s.GetSweep(g);
      }
    }
  }
  // The run reached the interesting states, not only validation errors.
  EXPECT_GT(f.tokens_.size(), 10u);
  // Invariant: every sweep's counters equal a fresh count of its jobs' states.
  v1::ListSweepsRequest list;
  list.set_include_finished(true);
  auto sweeps = s.ListSweeps(list);
  ASSERT_THAT(sweeps.status(), IsOk());
  ASSERT_GT(sweeps->sweeps_size(), 0);
  for (const v1::Sweep& sweep : sweeps->sweeps()) {
    const auto& c = sweep.counts();
    EXPECT_EQ(c.total(), c.queued() + c.leased() + c.done() + c.failed() + c.cancelled())
        << sweep.name();
    EXPECT_GE(c.queued(), 0);
    EXPECT_GE(c.leased(), 0);
    EXPECT_GE(c.done(), 0);
  }
}

}  // namespace
}  // namespace sf::coordinator
