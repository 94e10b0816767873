#include "coordinator/sqlite.h"

#include "absl/strings/str_cat.h"

namespace sf::coordinator {
namespace {

absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CONSTRAINT:
      return absl::StatusCode::kAlreadyExists;
    case SQLITE_AUTH:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_INTERRUPT:
      return absl::StatusCode::kDeadlineExceeded;
    case SQLITE_ERROR:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
      return absl::StatusCode::kInvalidArgument;
    case SQLITE_CANTOPEN:
    case SQLITE_NOTFOUND:
      return absl::StatusCode::kNotFound;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::Status Database::Error(int rc, absl::string_view what) const {
  return absl::Status(CodeFor(rc), absl::StrCat(what, " (sqlite ", path_, "): ",
                                                db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc)));
}

absl::StatusOr<std::unique_ptr<Database>> Database::OpenWriter(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<Database> db(new Database(raw, path));
  if (rc != SQLITE_OK) return db->Error(rc, "opening database for writing");
  sqlite3_busy_timeout(raw, 5000);
  if (path != ":memory:") {
    auto s = db->Exec("PRAGMA journal_mode=WAL");
    if (!s.ok()) return s;
  }
  auto s = db->Exec(
      "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;"
      "PRAGMA cache_size=-65536; PRAGMA mmap_size=4294967296; PRAGMA wal_autocheckpoint=10000;");
  if (!s.ok()) return s;
  return db;
}

absl::StatusOr<std::unique_ptr<Database>> Database::OpenReadOnly(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<Database> db(new Database(raw, path));
  if (rc != SQLITE_OK) return db->Error(rc, "opening database read-only");
  sqlite3_busy_timeout(raw, 5000);
  // Memory-mapped reads: random row lookups in a large database skip a syscall each.
  auto s = db->Exec("PRAGMA mmap_size=4294967296");
  if (!s.ok()) return s;
  return db;
}

Database::~Database() { sqlite3_close_v2(db_); }

absl::Status Database::Exec(absl::string_view sql) {
  std::string text(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return absl::Status(CodeFor(rc), absl::StrCat("sqlite ", path_, ": ", msg, " in: ", sql));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Statement>> Database::Prepare(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return Error(rc, absl::StrCat("preparing '", sql, "'"));
  }
  if (stmt == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("empty SQL statement: '", sql, "'"));
  }
  return std::unique_ptr<Statement>(new Statement(this, stmt));
}

int64_t Database::Changes() const { return sqlite3_changes64(db_); }
int64_t Database::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::MaybeReset() {
  if (stepped_) Reset();
}

void Statement::NoteBind(int rc) {
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) bind_error_ = rc;
}

Statement& Statement::Bind(int index, int64_t value) {
  MaybeReset();
  NoteBind(sqlite3_bind_int64(stmt_, index, value));
  return *this;
}
Statement& Statement::Bind(int index, double value) {
  MaybeReset();
  NoteBind(sqlite3_bind_double(stmt_, index, value));
  return *this;
}
Statement& Statement::Bind(int index, absl::string_view text) {
  MaybeReset();
  NoteBind(
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  return *this;
}
Statement& Statement::BindBlob(int index, absl::string_view bytes) {
  MaybeReset();
  NoteBind(sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT));
  return *this;
}
Statement& Statement::BindNull(int index) {
  MaybeReset();
  NoteBind(sqlite3_bind_null(stmt_, index));
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (bind_error_ != SQLITE_OK) {
    int rc = bind_error_;
    bind_error_ = SQLITE_OK;
    Reset();
    return db_->Error(rc, "binding parameters");
  }
  stepped_ = true;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  absl::Status err = db_->Error(rc, absl::StrCat("executing '", sqlite3_sql(stmt_), "'"));
  Reset();
  return err;
}

absl::Status Statement::Run() {
  auto row = Step();
  Reset();
  if (!row.ok()) return row.status();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> Statement::Ints() {
  std::vector<int64_t> out;
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) {
      Reset();
      return row.status();
    }
    if (!*row) break;
    out.push_back(Int(0));
  }
  Reset();
  return out;
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  stepped_ = false;
}

int Statement::ColumnCount() const { return sqlite3_column_count(stmt_); }
int Statement::ColumnType(int col) const { return sqlite3_column_type(stmt_, col); }
const char* Statement::ColumnName(int col) const {
  const char* name = sqlite3_column_name(stmt_, col);
  return name ? name : "";
}
int64_t Statement::Int(int col) const { return sqlite3_column_int64(stmt_, col); }
double Statement::Double(int col) const { return sqlite3_column_double(stmt_, col); }
std::string Statement::Text(int col) const {
  const unsigned char* text = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return text ? std::string(reinterpret_cast<const char*>(text), n) : std::string();
}
std::string Statement::Blob(int col) const {
  const void* data = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return data ? std::string(static_cast<const char*>(data), n) : std::string();
}
bool Statement::IsNull(int col) const { return ColumnType(col) == SQLITE_NULL; }

absl::StatusOr<std::unique_ptr<Transaction>> Transaction::Begin(Database* db) {
  auto s = db->Exec("BEGIN IMMEDIATE");
  if (!s.ok()) return s;
  return std::unique_ptr<Transaction>(new Transaction(db, /*savepoint=*/false));
}

absl::StatusOr<std::unique_ptr<Transaction>> Transaction::Savepoint(Database* db) {
  auto s = db->Exec("SAVEPOINT sf_txn");
  if (!s.ok()) return s;
  return std::unique_ptr<Transaction>(new Transaction(db, /*savepoint=*/true));
}

Transaction::~Transaction() {
  if (done_) return;
  // ROLLBACK TO keeps the savepoint open: release it so that it does not nest.
  (void)db_->Exec(savepoint_ ? "ROLLBACK TO sf_txn; RELEASE sf_txn" : "ROLLBACK");
}

absl::Status Transaction::Commit() {
  auto s = db_->Exec(savepoint_ ? "RELEASE sf_txn" : "COMMIT");
  if (s.ok()) done_ = true;
  return s;
}

}  // namespace sf::coordinator
