// The coordinator's core: sweeps, jobs, leases and results over the SQLite store.
// Every call's state change is atomic and committed before the call returns (group
// commit batches concurrent calls into one transaction), so a restart (even after
// SIGKILL) resumes from the database; the gRPC services are thin adapters over this class.
#ifndef SF_COORDINATOR_SCHEDULER_H_
#define SF_COORDINATOR_SCHEDULER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/group_commit.h"
#include "coordinator/job_store.h"
#include "coordinator/placement.h"
#include "coordinator/results_reader.h"
#include "coordinator/sqlite.h"
#include "sf/v1/coordinator.pb.h"
#include "sf/v1/worker.pb.h"

namespace sf::coordinator {

struct SchedulerOptions {
  absl::Duration lease_ttl = absl::Seconds(60);
  int max_attempts = 3;  // per job, unless the sweep asks for another number
  // Re-queue delay after the n-th failed attempt: backoff_base * 2^(n-1), capped.
  absl::Duration backoff_base = absl::Seconds(5);
  absl::Duration backoff_max = absl::Minutes(10);
  absl::Duration max_lease_wait = absl::Seconds(30);  // long-poll cap
  // Placement policy; both on in production, off only to measure their gain.
  bool model_affinity = true;
  bool longest_first = true;
  // Group commit: calls that arrive while another holds the store join one open
  // transaction, committed by the last of them (or once it holds this many calls).
  // Every call still returns only after its transaction committed. 1 = a commit per
  // call (only to measure the gain).
  int max_batch_calls = 128;
};

class Scheduler {
 public:
  // Opens (creating and migrating) the database at `path`. `clock` is used for lease
  // expiry, backoff and timestamps and must outlive the scheduler.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Open(const std::string& path, Clock* clock,
                                                         SchedulerOptions options = {});
  ~Scheduler();

  const SchedulerOptions& options() const { return options_; }
  const std::string& db_path() const { return path_; }

  // ---- user-facing ----
  // InvalidArgument for a bad request (empty name, job without key, NaN cost...):
  // nothing is stored then.
  absl::StatusOr<v1::SubmitSweepResponse> SubmitSweep(const v1::SubmitSweepRequest& request);
  // NotFound for an unknown sweep.
  absl::StatusOr<v1::Sweep> GetSweep(const v1::GetSweepRequest& request);
  absl::StatusOr<v1::ListSweepsResponse> ListSweeps(const v1::ListSweepsRequest& request);
  absl::StatusOr<v1::CancelSweepResponse> CancelSweep(const v1::CancelSweepRequest& request);
  absl::StatusOr<v1::RetryFailedResponse> RetryFailed(const v1::RetryFailedRequest& request);
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers(const v1::ListWorkersRequest& request);
  // Events of `sweep_id` with sequence > after_sequence, oldest first, at most `limit`.
  absl::StatusOr<std::vector<v1::SweepEvent>> ReadEvents(int64_t sweep_id, int64_t after_sequence,
                                                         int limit);
  // Blocks (real time) until an event with sequence > after_sequence exists, the
  // timeout passes or Shutdown() is called.
  void WaitForEvent(int64_t after_sequence, absl::Duration timeout);
  // The sequence number of the newest event of any sweep.
  int64_t LastEventSequence() const;
  // Streams the matching results in pages to `sink` (ReadResults in results_reader.h);
  // stops early when it returns false. Reads committed data only, without the lock
  // that leases need (file databases).
  absl::Status Results(const v1::ResultsRequest& request, const ResultsSink& sink);

  // ---- worker-facing ----
  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& request);
  // Grants the best fitting job, waiting up to min(wait_ms, max_lease_wait) of real
  // time for one; an empty response when none came. With max_leases > 1 (capped at 32)
  // the next best fitting jobs already queued come in more_leases, without waiting.
  // FailedPrecondition for an unregistered worker. `abandoned`, when given, is asked before each
  // look at the queue (at least once a second while waiting): once it says the caller gave up on
  // the poll, the call answers empty without granting a job nobody would receive.
  absl::StatusOr<v1::LeaseResponse> Lease(const v1::LeaseRequest& request,
                                          const std::function<bool()>& abandoned = nullptr);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request);
  // Aborted when the lease token is unknown, expired or superseded (the worker must
  // drop the job); samples already stored are acknowledged as duplicates.
  absl::StatusOr<v1::ReportSamplesResponse> ReportSamples(const v1::ReportSamplesRequest& request);
  // Stores request.samples (checked as ReportSamples checks them; InvalidArgument and
  // nothing stored, the job still leased, when one is bad) and closes the attempt, in
  // one transaction; the aggregate covers every stored sample of the job. A retry of a
  // Complete that succeeded (its reply lost) is Aborted, as any call with a closed
  // lease: the first call's samples and result stay stored once.
  absl::StatusOr<v1::CompleteResponse> Complete(const v1::CompleteRequest& request);
  absl::StatusOr<v1::FailResponse> Fail(const v1::FailRequest& request);

  // Re-queues (or fails) every job whose lease expired; returns how many. Every call
  // above does this first, so no background thread is needed for correctness.
  absl::StatusOr<int> ExpireLeases();
  // Wakes every waiting Lease/WaitForEvent so that a server can stop.
  void Shutdown();

  // Group commit counters since Open (for benchmarks and logs): transactions committed
  // and the calls they carried.
  struct CommitStats {
    int64_t commits = 0;
    int64_t calls = 0;
  };
  CommitStats commit_stats() const;

 private:
  struct LeasedJob {
    int64_t id = 0;
    std::string key;
    std::string worker;
    int64_t expires_ms = 0;
    int state = 0;
  };

  Scheduler(std::string path, Clock* clock, SchedulerOptions options, std::unique_ptr<Database> db);

  int64_t NowMs() const;
  // A cached prepared statement for `sql` (compiled on first use).
  absl::StatusOr<Statement*> Stmt(const std::string& sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ExpireLocked(int* expired) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SetState(int64_t job_id, int from, int to) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AddJobEvent(int64_t job_id, int kind, const std::string& key,
                           const std::string& worker, const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AddSweepEvent(int64_t sweep_id, int kind, const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status FinishSweepsOf(int64_t job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `sweep_id` and every sweep that shares a job with it.
  absl::StatusOr<std::vector<int64_t>> SweepsSharingJobsWith(int64_t sweep_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status FinishSweepIfDone(int64_t sweep_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Recount(int64_t sweep_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends an attempt that did not succeed: re-queue with backoff (counted from
  // `ended_ms`, or now when -1) or fail for good.
  absl::Status EndAttempt(const LeasedJob& job, const std::string& error, bool preempted,
                          bool permanent, v1::FailResponse* response, int64_t ended_ms = -1)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  using SampleList = google::protobuf::RepeatedPtrField<v1::SampleResult>;
  using IndexList = google::protobuf::RepeatedField<int32_t>;
  absl::StatusOr<int64_t> SamplesTotal(int64_t job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // InvalidArgument naming the job when an index is >= samples_total.
  absl::Status CheckSampleRange(const LeasedJob& job, const SampleList& samples,
                                int64_t samples_total) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stores the samples not yet stored for the job (inside an open transaction), adds
  // them to the job's and its sweeps' counts, and lists each index as accepted or
  // duplicate.
  absl::Status StoreSamples(const LeasedJob& job, const std::string& lease_token,
                            const SampleList& samples, int64_t now_ms, IndexList* accepted,
                            IndexList* duplicates) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The live lease for `token`, or Aborted.
  absl::StatusOr<LeasedJob> LiveLease(const std::string& token) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<WorkerCaps> Caps(const std::string& worker_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // For the queued jobs among `job_ids` (all queued jobs when null): a job that no live
  // registered worker (seen within 3 lease TTLs) can hold (WorkerCanHold: its GPUs, their
  // memory) gets a last_error saying why and a JOB_UNPLACEABLE event, once per reason; a
  // job that one can hold again loses that last_error. Nothing while no worker is live.
  absl::Status RefreshUnplaceable(const std::vector<int64_t>* job_ids)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::optional<v1::Lease>> TryLease(const std::string& worker_id,
                                                    const WorkerCaps& caps)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::Sweep> SweepById(int64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::SweepCounts> Counts(int64_t sweep_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static absl::StatusOr<std::string> NewToken();

  const std::string path_;
  Clock* const clock_;
  const SchedulerOptions options_;

  mutable absl::Mutex mu_;
  absl::CondVar work_cv_;   // jobs became leasable
  absl::CondVar event_cv_;  // events were written
  std::unique_ptr<Database> db_ ABSL_GUARDED_BY(mu_);
  StatementCache statements_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, WorkerCaps> workers_ ABSL_GUARDED_BY(mu_);
  int64_t last_event_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;

  // Every public call that touches the store holds a GroupCommit::Call (which holds mu_).
  GroupCommit commit_;

  // Results reads through its own read-only connection (file databases only).
  absl::Mutex reader_mu_;
  std::unique_ptr<Database> reader_ ABSL_GUARDED_BY(reader_mu_);
};

}  // namespace sf::coordinator

#endif  // SF_COORDINATOR_SCHEDULER_H_
