#include "coordinator/query.h"

#include <sqlite3.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "coordinator/sqlite.h"
#include "sf/v1/job.pb.h"

namespace sf::coordinator {
namespace {

// `denied` (a bool) records a refusal: SQLite may report it as SQLITE_AUTH or, for
// schema changes, as SQLITE_SCHEMA.
int Authorize(void* denied, int action, const char*, const char*, const char*, const char*) {
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
      return SQLITE_OK;
    default:
      *static_cast<bool*>(denied) = true;
      return SQLITE_DENY;
  }
}

// "VALUES (1, 'queued'), ..." for an enum: each value's name without the common prefix,
// lower case (JOB_STATE_QUEUED -> 'queued'); UNSPECIFIED is left out.
std::string EnumValues(const google::protobuf::EnumDescriptor* e, absl::string_view prefix) {
  std::string values;
  for (int i = 0; i < e->value_count(); ++i) {
    const google::protobuf::EnumValueDescriptor* v = e->value(i);
    if (v->number() == 0) continue;
    std::string name = absl::AsciiStrToLower(absl::StripPrefix(v->name(), prefix));
    absl::StrAppend(&values, values.empty() ? "VALUES " : ", ", "(", v->number(), ", '", name,
                    "')");
  }
  return values;
}

// Temporary views that name the states and event kinds the tables store as numbers
// (docs/coordinator.md lists them). They live in this connection's temp schema: the
// database file is not written.
absl::Status CreateNamedViews(Database* db) {
  return db->Exec(absl::StrCat(
      "CREATE TEMP VIEW job_states(state, name) AS ",
      EnumValues(v1::JobState_descriptor(), "JOB_STATE_"), ";",
      "CREATE TEMP VIEW sweep_states(state, name) AS ",
      EnumValues(v1::SweepState_descriptor(), "SWEEP_STATE_"), ";",
      "CREATE TEMP VIEW event_kinds(kind, name) AS ",
      EnumValues(v1::EventKind_descriptor(), "EVENT_KIND_"), ";",
      "CREATE TEMP VIEW job_status AS SELECT j.id AS job_id, j.key, j.model_name AS model, "
      "j.sequence_length AS length, j.prefill_method AS prefill, j.prefill_compression, "
      "j.decode_method AS decode, j.decode_compression, j.task, j.seed, s.name AS state, "
      "j.attempts AS failed_attempts, j.max_attempts, j.preemptions, j.samples_done, "
      "j.samples_total, j.lease_worker AS worker, j.last_error, j.created_ms, j.updated_ms "
      "FROM main.jobs j LEFT JOIN job_states s ON s.state = j.state;",
      "CREATE TEMP VIEW event_log AS SELECT e.seq, e.sweep_id, k.name AS kind, e.job_key, "
      "e.worker_id, e.message, e.unix_ms FROM main.events e "
      "LEFT JOIN event_kinds k ON k.kind = e.kind;"));
}

int CheckDeadline(void* arg) { return absl::Now() > *static_cast<absl::Time*>(arg) ? 1 : 0; }

}  // namespace

absl::Status RunReadOnlyQuery(const std::string& db_path, const std::string& sql,
                              const QueryLimits& limits,
                              const std::function<bool(v1::QueryResponse&)>& sink) {
  if (db_path == ":memory:" || db_path.empty()) {
    return absl::FailedPreconditionError("Query needs a database file, not :memory:");
  }
  SF_ASSIGN_OR_RETURN(auto db, Database::OpenReadOnly(db_path));
  sqlite3* raw = db->raw();
  // Belt and braces: the connection is read-only, and the authorizer refuses any
  // action but reading (ATTACH, PRAGMA, temp tables and triggers included).
  sqlite3_db_config(raw, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_limit(raw, SQLITE_LIMIT_ATTACHED, 0);
  SF_RETURN_IF_ERROR(Annotate(CreateNamedViews(db.get()), "naming states for the query"));
  bool denied = false;
  sqlite3_set_authorizer(raw, Authorize, &denied);
  absl::Time deadline = absl::Now() + limits.timeout;
  sqlite3_progress_handler(raw, 1000, CheckDeadline, &deadline);

  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(raw, sql.c_str(), static_cast<int>(sql.size()), &stmt, &tail);
  if (rc != SQLITE_OK) {
    absl::Status s = db->Error(rc, "query");
    sqlite3_finalize(stmt);
    if (rc == SQLITE_AUTH || denied) {
      return absl::PermissionDeniedError(
          absl::StrCat("query denied: only reading (SELECT) is allowed: ", sqlite3_errmsg(raw)));
    }
    return s;
  }
  if (stmt == nullptr) return absl::InvalidArgumentError("query is empty");
  if (tail != nullptr && !absl::StripAsciiWhitespace(absl::string_view(tail)).empty() &&
      absl::StripAsciiWhitespace(absl::string_view(tail)) != ";") {
    sqlite3_finalize(stmt);
    return absl::InvalidArgumentError("give one SQL statement only");
  }
  if (!sqlite3_stmt_readonly(stmt)) {
    sqlite3_finalize(stmt);
    return absl::PermissionDeniedError("query denied: only reading (SELECT) is allowed");
  }
  const int ncol = sqlite3_column_count(stmt);
  v1::QueryResponse out;
  for (int c = 0; c < ncol; ++c) {
    const char* name = sqlite3_column_name(stmt, c);
    out.add_columns(name ? name : "");
  }
  int64_t rows = 0;
  bool first = true;
  absl::Status status;
  while (true) {
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      if (rc == SQLITE_INTERRUPT) {
        status = absl::DeadlineExceededError(absl::StrCat("query ran past its time limit of ",
                                                          absl::FormatDuration(limits.timeout),
                                                          ": add a WHERE clause or LIMIT"));
      } else if (rc == SQLITE_AUTH || denied) {
        status = absl::PermissionDeniedError(
            absl::StrCat("query denied: only reading (SELECT) is allowed: ", sqlite3_errmsg(raw)));
      } else {
        status = db->Error(rc, "query");
      }
      break;
    }
    if (rows >= limits.max_rows) {
      out.set_truncated(true);
      break;
    }
    ++rows;
    v1::QueryRow* row = out.add_rows();
    for (int c = 0; c < ncol; ++c) {
      v1::QueryValue* v = row->add_values();
      switch (sqlite3_column_type(stmt, c)) {
        case SQLITE_INTEGER:
          v->set_int_value(sqlite3_column_int64(stmt, c));
          break;
        case SQLITE_FLOAT:
          v->set_double_value(sqlite3_column_double(stmt, c));
          break;
        case SQLITE_TEXT:
          v->set_text_value(reinterpret_cast<const char*>(sqlite3_column_text(stmt, c)),
                            sqlite3_column_bytes(stmt, c));
          break;
        case SQLITE_BLOB:
          v->set_blob_value(static_cast<const char*>(sqlite3_column_blob(stmt, c)),
                            sqlite3_column_bytes(stmt, c));
          break;
        default:
          v->set_is_null(true);
      }
    }
    if (out.rows_size() >= limits.batch_rows) {
      first = false;
      if (!sink(out)) {
        sqlite3_finalize(stmt);
        return absl::OkStatus();
      }
      out.Clear();
    }
  }
  sqlite3_finalize(stmt);
  if (!status.ok()) return status;
  if (first || out.rows_size() > 0 || out.truncated()) sink(out);
  return absl::OkStatus();
}

}  // namespace sf::coordinator
