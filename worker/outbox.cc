#include "worker/outbox.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"

namespace sf::worker {
namespace {

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS outbox_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS leases (
  lease_token TEXT PRIMARY KEY,
  job_key TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS samples (
  lease_token TEXT NOT NULL,
  sample_index INTEGER NOT NULL,
  payload BLOB NOT NULL,
  PRIMARY KEY (lease_token, sample_index)
);
)sql";

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  return absl::InternalError(absl::StrCat("worker outbox: ", what, ": ",
                                          db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
}

// A prepared statement finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  absl::Status status(absl::string_view what) const {
    return rc_ == SQLITE_OK ? absl::OkStatus() : SqliteError(db_, rc_, what);
  }
  sqlite3_stmt* get() { return s_; }
  void Text(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void Blob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void Int(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  // Steps to the end of a statement without rows.
  absl::Status Run(absl::string_view what) {
    const int rc = sqlite3_step(s_);
    return rc == SQLITE_DONE ? absl::OkStatus() : SqliteError(db_, rc, what);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  int rc_ = SQLITE_OK;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Outbox>> Outbox::Open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = SqliteError(db, rc, absl::StrCat("opening ", path));
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<Outbox> outbox(new Outbox(db));
  absl::MutexLock lock(&outbox->mu_);
  absl::Status s;
  // The last two fail on a database of another schema, whose tables of the same name
  // CREATE TABLE IF NOT EXISTS leaves as they are.
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", kSchema,
                          "SELECT lease_token, job_key FROM leases LIMIT 0",
                          "SELECT lease_token, sample_index, payload FROM samples LIMIT 0"}) {
    if (s.ok()) s = outbox->Exec(sql);
  }
  if (!s.ok()) {
    return absl::InternalError(absl::StrCat(path, " is not a worker outbox (", s.message(),
                                            "); move it away or pass another --outbox"));
  }
  return outbox;
}

Outbox::~Outbox() { sqlite3_close(db_); }

absl::Status Outbox::Exec(const std::string& sql) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return absl::OkStatus();
  absl::Status s = absl::InternalError(absl::StrCat("worker outbox: ", error ? error : "error"));
  sqlite3_free(error);
  return s;
}

absl::Status Outbox::AddLease(const std::string& lease_token, const std::string& job_key) {
  absl::MutexLock lock(&mu_);
  Stmt st(db_, "INSERT OR IGNORE INTO leases (lease_token, job_key) VALUES (?, ?)");
  if (absl::Status s = st.status("recording a lease"); !s.ok()) return s;
  st.Text(1, lease_token);
  st.Text(2, job_key);
  return st.Run("recording a lease");
}

absl::Status Outbox::RemoveLease(const std::string& lease_token) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  for (const char* sql :
       {"DELETE FROM samples WHERE lease_token = ?", "DELETE FROM leases WHERE lease_token = ?"}) {
    Stmt st(db_, sql);
    absl::Status s = st.status("removing a lease");
    if (s.ok()) {
      st.Text(1, lease_token);
      s = st.Run("removing a lease");
    }
    if (!s.ok()) {
      Exec("ROLLBACK").IgnoreError();
      return s;
    }
  }
  return Exec("COMMIT");
}

absl::StatusOr<std::vector<HeldLease>> Outbox::Leases() {
  absl::MutexLock lock(&mu_);
  Stmt st(db_, "SELECT lease_token, job_key FROM leases ORDER BY rowid");
  if (absl::Status s = st.status("listing leases"); !s.ok()) return s;
  std::vector<HeldLease> leases;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    leases.push_back({reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0)),
                      reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 1))});
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, rc, "listing leases");
  return leases;
}

absl::Status Outbox::Add(const std::string& lease_token, const v1::SampleResult& sample) {
  absl::MutexLock lock(&mu_);
  Stmt st(db_,
          "INSERT OR IGNORE INTO samples (lease_token, sample_index, payload) VALUES (?, ?, ?)");
  if (absl::Status s = st.status("storing a sample"); !s.ok()) return s;
  st.Text(1, lease_token);
  st.Int(2, sample.index());
  st.Blob(3, sample.SerializeAsString());
  return st.Run(absl::StrCat("storing sample ", sample.index()));
}

absl::StatusOr<std::vector<v1::SampleResult>> Outbox::Pending(const std::string& lease_token,
                                                              int limit) {
  absl::MutexLock lock(&mu_);
  Stmt st(db_, "SELECT payload FROM samples WHERE lease_token = ? ORDER BY sample_index LIMIT ?");
  if (absl::Status s = st.status("reading pending samples"); !s.ok()) return s;
  st.Text(1, lease_token);
  st.Int(2, limit);
  std::vector<v1::SampleResult> samples;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    v1::SampleResult sample;
    const void* data = sqlite3_column_blob(st.get(), 0);
    const int size = sqlite3_column_bytes(st.get(), 0);
    if (!sample.ParseFromArray(data, size)) {
      return absl::DataLossError("worker outbox: a stored sample does not parse");
    }
    samples.push_back(std::move(sample));
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, rc, "reading pending samples");
  return samples;
}

absl::Status Outbox::Ack(const std::string& lease_token, const std::vector<int32_t>& indices) {
  if (indices.empty()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  Stmt st(db_, "DELETE FROM samples WHERE lease_token = ? AND sample_index = ?");
  absl::Status s = st.status("acknowledging samples");
  for (int32_t index : indices) {
    if (!s.ok()) break;
    sqlite3_reset(st.get());
    st.Text(1, lease_token);
    st.Int(2, index);
    s = st.Run("acknowledging samples");
  }
  if (!s.ok()) {
    Exec("ROLLBACK").IgnoreError();
    return s;
  }
  return Exec("COMMIT");
}

absl::StatusOr<int64_t> Outbox::PendingCount() {
  absl::MutexLock lock(&mu_);
  Stmt st(db_, "SELECT COUNT(*) FROM samples");
  if (absl::Status s = st.status("counting samples"); !s.ok()) return s;
  if (sqlite3_step(st.get()) != SQLITE_ROW) return SqliteError(db_, SQLITE_ERROR, "counting");
  return sqlite3_column_int64(st.get(), 0);
}

}  // namespace sf::worker
