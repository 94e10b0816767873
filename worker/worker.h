// The worker loop: register devices and capabilities, long-poll for leases, run each job
// through an Evaluator while heartbeating, ship every finished sample through the local
// outbox, close the attempt (Complete or Fail), and survive coordinator restarts by
// backing off and re-registering. Clock, client, evaluator and outbox are injected, so the
// loop is tested without a network or sleeps.
#ifndef SF_WORKER_WORKER_H_
#define SF_WORKER_WORKER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "sf/v1/worker.pb.h"
#include "worker/evaluator.h"
#include "worker/outbox.h"
#include "worker/worker_client.h"

namespace sf::worker {

struct WorkerOptions {
  std::string worker_id;  // required; stable across restarts of this worker
  std::string hostname;
  std::vector<v1::Device> devices;
  std::string engine_version;
  // Where a batch scheduler placed this worker (Slurm job id and node); empty outside one.
  std::string slurm_job_id;
  std::string slurm_node;
  // How long one Lease long poll may wait on the server.
  absl::Duration lease_wait = absl::Seconds(10);
  // Backoff between failed calls (coordinator down or restarting), doubling to the cap.
  absl::Duration backoff_initial = absl::Milliseconds(200);
  absl::Duration backoff_max = absl::Seconds(5);
  // Samples per ReportSamples call, and the most that ride with Complete: a job's
  // samples still unsent when it ends go out with Complete (up to this many; the
  // rest through ReportSamples first).
  int report_batch = 64;
  // Heartbeat period when the coordinator does not say (it says lease_ttl / 3).
  absl::Duration default_heartbeat = absl::Seconds(10);
  // Real time the control loop waits for the evaluator between looks at the clock.
  // Only latency depends on it; decisions use the injected clock.
  absl::Duration poll_slice = absl::Milliseconds(20);
  // Stop after this many leases (0 = never); for tests and one-shot workers.
  int64_t max_jobs = 0;
};

// What the worker does after a call to the coordinator failed, by its code.
enum class NextStep {
  kRetry,       // down, restarting, stopping or overloaded: back off and call again
  kReregister,  // it does not know this worker (FailedPrecondition, NotFound): register
  kDropLease,   // the lease is gone (Aborted): drop the job, keep working
  kGiveUp,      // wrong token, a refused request, a bug: stop with the coordinator's message
};
NextStep NextStepAfter(const absl::Status& coordinator_error);

enum class StopMode {
  kRelease,    // cancel the running job, report what is done, Fail(preempted)
  kFinishJob,  // let the running job finish and complete, then stop
};

struct WorkerStats {
  int64_t jobs_completed = 0;
  int64_t jobs_failed = 0;    // attempts closed with Fail (not preempted)
  int64_t jobs_released = 0;  // attempts closed with Fail(preempted)
  int64_t jobs_lost = 0;      // leases the coordinator took back (expired, cancelled)
  int64_t samples_sent = 0;   // acknowledged as newly stored
  int64_t samples_duplicate = 0;
  int64_t reconnects = 0;  // registrations after the first
};

class Worker {
 public:
  // All pointers must outlive the worker.
  Worker(WorkerOptions options, WorkerClient* client, Evaluator* evaluator, Outbox* outbox,
         Clock* clock);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Registers (retrying until the coordinator answers), releases the leases a previous
  // run of this worker left in the outbox (after re-sending their samples), then leases
  // and runs jobs until Stop() or max_jobs. Returns OK after a clean stop; an error when
  // the outbox fails (the worker cannot keep its promise of durability).
  absl::Status Run();

  // Asks Run() to return. Thread-safe; may be called from a signal-handling thread.
  // A second call may turn kFinishJob into kRelease.
  void Stop(StopMode mode);

  WorkerStats stats() const;

 private:
  struct Attempt;

  bool stopping() const;
  // Sleeps `d` of the clock's time in slices, returning early once a stop is requested.
  void SleepUnlessStopping(absl::Duration d);
  void Backoff();
  void ResetBackoff() ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Register();
  absl::Status RecoverOutbox();
  absl::Status RunLease(const v1::Lease& lease);
  // Sends every pending sample of the lease once (in batches) but the last `keep`,
  // by index. Aborted when the coordinator refused the lease; Unavailable etc. when it
  // could not be reached.
  absl::Status Flush(const std::string& token, int keep = 0);
  // Closes a finished attempt with Complete, carrying the samples still pending.
  absl::Status CompleteAttempt(Attempt& attempt);
  // Records that the outbox failed (the first error sticks) and returns the error the
  // worker stops with: retrying cannot help, and jobs cannot be run without it.
  absl::Status OutboxFailed(const absl::Status& error) ABSL_LOCKS_EXCLUDED(mu_);
  bool outbox_failed() const ABSL_LOCKS_EXCLUDED(mu_);
  // Repeats `call` until it succeeds, fails for good, or the worker must stop;
  // heartbeats the attempt meanwhile when `attempt` is given.
  absl::Status Retry(const std::function<absl::Status()>& call, Attempt* attempt);
  void MaybeHeartbeat(Attempt& attempt);
  absl::Status Close(Attempt& attempt, const absl::Status& eval_status);

  const WorkerOptions options_;
  WorkerClient* const client_;
  Evaluator* const evaluator_;
  Outbox* const outbox_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  StopMode stop_mode_ ABSL_GUARDED_BY(mu_) = StopMode::kRelease;
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_);
  bool registered_once_ ABSL_GUARDED_BY(mu_) = false;
  bool need_register_ ABSL_GUARDED_BY(mu_) = true;
  WorkerStats stats_ ABSL_GUARDED_BY(mu_);
  absl::Status outbox_error_ ABSL_GUARDED_BY(mu_);
  // Set while an attempt runs: the evaluator thread signals new samples through it.
  Attempt* current_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace sf::worker

#endif  // SF_WORKER_WORKER_H_
