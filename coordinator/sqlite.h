// A small RAII layer over SQLite: a connection, prepared statements that are bound,
// stepped and reset (reused), and a transaction that rolls back unless committed.
#ifndef SF_COORDINATOR_SQLITE_H_
#define SF_COORDINATOR_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sf::coordinator {

class Statement;

// One SQLite connection. Not thread-safe: callers serialize access (the scheduler
// holds its mutex around every use of the writer connection).
class Database {
 public:
  // Opens (creating if absent) the database at `path` (":memory:" allowed) for
  // writing, in WAL mode with synchronous=NORMAL and foreign keys on.
  static absl::StatusOr<std::unique_ptr<Database>> OpenWriter(const std::string& path);
  // Opens an existing database read-only (SQLITE_OPEN_READONLY).
  static absl::StatusOr<std::unique_ptr<Database>> OpenReadOnly(const std::string& path);

  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements without results.
  absl::Status Exec(absl::string_view sql);
  // Compiles `sql` into a statement bound to this connection.
  absl::StatusOr<std::unique_ptr<Statement>> Prepare(absl::string_view sql);
  int64_t Changes() const;
  int64_t LastInsertRowId() const;
  sqlite3* raw() const { return db_; }
  const std::string& path() const { return path_; }

  // Converts the connection's last error (`rc`) into a Status naming `what`.
  absl::Status Error(int rc, absl::string_view what) const;

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
};

// A prepared statement. Bind with 1-based indices, Step() until it returns false,
// then Reset() (also done by Bind* after a finished step) to reuse.
class Statement {
 public:
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, int value) { return Bind(index, static_cast<int64_t>(value)); }
  Statement& Bind(int index, double value);
  Statement& Bind(int index, absl::string_view text);
  Statement& Bind(int index, const char* text) { return Bind(index, absl::string_view(text)); }
  Statement& Bind(int index, const std::string& text) {
    return Bind(index, absl::string_view(text));
  }
  Statement& BindBlob(int index, absl::string_view bytes);
  Statement& BindNull(int index);

  // Returns true when a row is ready, false when done; an error otherwise. The
  // first bind error (if any) is reported here.
  absl::StatusOr<bool> Step();
  // Steps a statement expected to return no rows, then resets it.
  absl::Status Run();
  // Steps through every row, collecting column 0 as an integer, then resets.
  absl::StatusOr<std::vector<int64_t>> Ints();
  void Reset();

  int ColumnCount() const;
  int ColumnType(int col) const;  // SQLITE_INTEGER, SQLITE_FLOAT, ...
  const char* ColumnName(int col) const;
  int64_t Int(int col) const;
  double Double(int col) const;
  std::string Text(int col) const;
  std::string Blob(int col) const;
  bool IsNull(int col) const;

 private:
  friend class Database;
  Statement(Database* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  void MaybeReset();
  void NoteBind(int rc);
  Database* db_;
  sqlite3_stmt* stmt_;
  bool stepped_ = false;
  int bind_error_ = SQLITE_OK;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless Commit() succeeded.
// A Savepoint() is the same inside an open transaction: Commit() releases it into the
// enclosing transaction, destruction rolls back only its own changes.
class Transaction {
 public:
  static absl::StatusOr<std::unique_ptr<Transaction>> Begin(Database* db);
  static absl::StatusOr<std::unique_ptr<Transaction>> Savepoint(Database* db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  absl::Status Commit();

 private:
  Transaction(Database* db, bool savepoint) : db_(db), savepoint_(savepoint) {}
  Database* db_;
  bool savepoint_;
  bool done_ = false;
};

}  // namespace sf::coordinator

#endif  // SF_COORDINATOR_SQLITE_H_
