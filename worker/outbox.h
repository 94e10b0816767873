// The worker's local SQLite outbox: each finished sample is stored (and synced) here
// before it is sent, and deleted only when the coordinator acknowledges it, so a worker
// that crashes re-sends what was not acknowledged. It also remembers the leases the
// worker holds, so that a restarted worker can release them at once.
#ifndef SF_WORKER_OUTBOX_H_
#define SF_WORKER_OUTBOX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "sf/v1/job.pb.h"

struct sqlite3;

namespace sf::worker {

struct HeldLease {
  std::string lease_token;
  std::string job_key;
};

// Thread-safe. Every write is its own transaction, synced (WAL, synchronous=FULL).
class Outbox {
 public:
  // Opens or creates the outbox at `path` (":memory:" for tests that need no
  // durability). Internal when the file cannot be opened or is not an outbox.
  static absl::StatusOr<std::unique_ptr<Outbox>> Open(const std::string& path);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Notes that the worker holds `lease_token` for `job_key` (idempotent).
  absl::Status AddLease(const std::string& lease_token, const std::string& job_key);
  // Forgets a lease and every sample still pending under it (the coordinator closed or
  // refused the lease, so they can no longer be delivered under it).
  absl::Status RemoveLease(const std::string& lease_token);
  absl::StatusOr<std::vector<HeldLease>> Leases();

  // Stores `sample` for the lease; returns once it is on disk. Storing the same index
  // twice for a lease keeps the first.
  absl::Status Add(const std::string& lease_token, const v1::SampleResult& sample);
  // Up to `limit` samples of the lease not yet acknowledged, by increasing index.
  absl::StatusOr<std::vector<v1::SampleResult>> Pending(const std::string& lease_token, int limit);
  // Deletes the acknowledged indices of the lease.
  absl::Status Ack(const std::string& lease_token, const std::vector<int32_t>& indices);
  // Samples not yet acknowledged, over every lease.
  absl::StatusOr<int64_t> PendingCount();

 private:
  explicit Outbox(sqlite3* db) : db_(db) {}
  absl::Status Exec(const std::string& sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* const db_;  // one connection, used under mu_
};

}  // namespace sf::worker

#endif  // SF_WORKER_OUTBOX_H_
