#include "coordinator/group_commit.h"

#include "common/logging.h"

namespace sf::coordinator {

GroupCommit::Call::Call(GroupCommit* commit) : commit_(commit) {
  commit_->entering_.fetch_add(1);
  commit_->mu_->Lock();
  commit_->entering_.fetch_sub(1);
}

GroupCommit::Call::~Call() {
  if (!finished_) {
    absl::Status st = commit_->AwaitDurable();
    if (!st.ok()) SF_LOG(WARNING) << "group commit failed: " << st;
  }
  commit_->mu_->Unlock();
}

absl::StatusOr<std::unique_ptr<Transaction>> GroupCommit::Begin() {
  if (!batch_open_) {
    if (absl::Status st = db_->Exec("BEGIN IMMEDIATE"); !st.ok()) return st;
    batch_open_ = true;
    batch_calls_ = 0;
  }
  return Transaction::Savepoint(db_);
}

absl::Status GroupCommit::CommitBatch() {
  if (!batch_open_) return absl::OkStatus();
  absl::Status st = db_->Exec("COMMIT");
  if (!st.ok()) {
    (void)db_->Exec("ROLLBACK");
    failed_epoch_ = batch_epoch_;
    failed_status_ = st;
    if (on_failed_commit_) on_failed_commit_();
    SF_LOG(ERROR) << "commit of " << batch_calls_ << " call(s) failed: " << st;
  } else {
    ++stats_.commits;
    stats_.calls += batch_calls_;
  }
  batch_open_ = false;
  committed_epoch_ = batch_epoch_++;
  committed_cv_.SignalAll();
  return st;
}

absl::Status GroupCommit::AwaitDurable() {
  if (!batch_open_) return absl::OkStatus();
  const int64_t mine = batch_epoch_;
  ++batch_calls_;
  if (entering_.load() == 0 || batch_calls_ >= max_batch_calls_) return CommitBatch();
  // A queued call will take the mutex next and, ending the same way, commit or pass it on.
  while (committed_epoch_ < mine) committed_cv_.Wait(mu_);
  return failed_epoch_ == mine ? failed_status_ : absl::OkStatus();
}

}  // namespace sf::coordinator
