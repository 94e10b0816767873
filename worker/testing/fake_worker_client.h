// An in-memory stand-in for the coordinator's WorkerService, for worker-loop unit tests:
// hands out the leases a test queues, stores reported samples by (token, index) the way
// the coordinator does, injects errors, and lets a test wait for what the worker did.
#ifndef SF_WORKER_TESTING_FAKE_WORKER_CLIENT_H_
#define SF_WORKER_TESTING_FAKE_WORKER_CLIENT_H_

#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "worker/worker_client.h"

namespace sf::worker::testing {

class FakeWorkerClient : public WorkerClient {
 public:
  // What the fake saw; read under Inspect() or Await().
  struct State {
    std::vector<v1::RegisterWorkerRequest> registers;
    std::vector<v1::HeartbeatRequest> heartbeats;
    std::vector<v1::ReportSamplesRequest> reports;
    std::map<std::string, std::map<int32_t, v1::SampleResult>> stored;  // token -> samples
    std::vector<v1::CompleteRequest> completes;
    std::vector<v1::FailRequest> fails;
    std::deque<v1::Lease> queued;
    std::set<std::string> revoked;                // tokens refused with Aborted
    std::map<std::string, v1::StopReason> stops;  // returned by the next heartbeat
    // Errors returned by the next calls of a method ("Lease", "ReportSamples", ...).
    std::map<std::string, std::deque<absl::Status>> errors;
    int64_t lease_ttl_ms = 30'000;
    int lease_polls = 0;
  };

  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& request) override;
  // Blocks (real time) until a lease is queued or CancelLeasePoll() is called.
  absl::StatusOr<v1::LeaseResponse> Lease(const v1::LeaseRequest& request) override;
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override;
  absl::StatusOr<v1::ReportSamplesResponse> ReportSamples(
      const v1::ReportSamplesRequest& request) override;
  absl::StatusOr<v1::CompleteResponse> Complete(const v1::CompleteRequest& request) override;
  absl::StatusOr<v1::FailResponse> Fail(const v1::FailRequest& request) override;
  void CancelLeasePoll() override;

  // Runs `f` on the state under the lock.
  void Mutate(const std::function<void(State&)>& f);
  // Blocks until `pred` holds for the state.
  void Await(const std::function<bool(const State&)>& pred);
  template <typename T>
  T Inspect(const std::function<T(const State&)>& f) {
    absl::MutexLock lock(&mu_);
    return f(state_);
  }

  static v1::Lease MakeLease(const std::string& token, const std::string& key, int samples,
                             std::vector<int32_t> samples_done = {});

 private:
  // The injected error for `method`, if any (consumed).
  absl::Status NextError(const std::string& method) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_);
  bool cancel_poll_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace sf::worker::testing

#endif  // SF_WORKER_TESTING_FAKE_WORKER_CLIENT_H_
