// Group commit over the coordinator's one writer connection: calls that arrive while
// another holds the store share one open transaction, each inside its own savepoint,
// and the last of a burst commits for all. No call answers before the transaction
// holding its writes has committed, so a restart never takes back an acknowledged write
// (docs/coordinator.md, "Durability and group commit").
#ifndef SF_COORDINATOR_GROUP_COMMIT_H_
#define SF_COORDINATOR_GROUP_COMMIT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/sqlite.h"

namespace sf::coordinator {

class GroupCommit {
 public:
  struct Stats {
    int64_t commits = 0;  // transactions committed
    int64_t calls = 0;    // calls they carried
  };

  // `mu` guards the store (held by every call, see Call); `db` is the writer
  // connection. A batch ends after `max_batch_calls` calls even in a burst (1 = a
  // commit per call). `on_failed_commit` runs (under `mu`) after a commit failed and
  // was rolled back, so the owner drops state cached from the lost writes.
  GroupCommit(absl::Mutex* mu, Database* db, int max_batch_calls,
              std::function<void()> on_failed_commit)
      : mu_(mu),
        db_(db),
        max_batch_calls_(max_batch_calls),
        on_failed_commit_(std::move(on_failed_commit)) {}

  // Holds the store's mutex for one public call. Leaving (Finish, or destruction on an
  // error path) waits until what the call wrote is committed.
  class Call {
   public:
    explicit Call(GroupCommit* commit) ABSL_EXCLUSIVE_LOCK_FUNCTION(commit->mu_);
    // A call that leaves through an error still makes what it wrote (e.g. expired
    // leases it re-queued) durable, and never leaves a batch open without a committer.
    ~Call() ABSL_UNLOCK_FUNCTION();
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;

    // `result`, once the batch holding this call's writes is committed; the commit's
    // error otherwise.
    template <typename T>
    absl::StatusOr<T> Finish(absl::StatusOr<T> result) {
      finished_ = true;
      absl::Status st = commit_->AwaitDurable();
      if (!st.ok()) return st;
      return result;
    }
    template <typename T>
    absl::StatusOr<T> Finish(T value) {
      return Finish(absl::StatusOr<T>(std::move(value)));
    }

   private:
    GroupCommit* const commit_;
    bool finished_ = false;
  };

  // A savepoint inside the open batch transaction (opened here if none is).
  absl::StatusOr<std::unique_ptr<Transaction>> Begin() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Commits the open batch (if any) now and wakes the calls waiting for it; a call that
  // is about to sleep (a long poll) commits first, so nobody waits on it.
  absl::Status CommitBatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Returns once everything the calling thread wrote or read is committed: commits
  // now, or, while other calls are queued for the mutex, leaves that to the last of them.
  absl::Status AwaitDurable() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Stats stats() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stats_; }

 private:
  absl::Mutex* const mu_;
  Database* const db_;
  const int max_batch_calls_;
  const std::function<void()> on_failed_commit_;

  // Calls blocked on mu_ (not guarded by it: raised before taking the lock), so that a
  // finishing call knows another will follow it and commit for both.
  std::atomic<int> entering_{0};
  absl::CondVar committed_cv_;  // a batch ended
  bool batch_open_ ABSL_GUARDED_BY(mu_) = false;
  int batch_calls_ ABSL_GUARDED_BY(mu_) = 0;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  int64_t batch_epoch_ ABSL_GUARDED_BY(mu_) = 1;      // the open (or next) batch
  int64_t committed_epoch_ ABSL_GUARDED_BY(mu_) = 0;  // newest batch that ended
  int64_t failed_epoch_ ABSL_GUARDED_BY(mu_) = 0;     // newest batch whose commit failed
  absl::Status failed_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sf::coordinator

#endif  // SF_COORDINATOR_GROUP_COMMIT_H_
