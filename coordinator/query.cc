#include "coordinator/query.h"

#include <sqlite3.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "coordinator/sqlite.h"
#include "sf/v1/job.pb.h"

namespace sf::coordinator {
namespace {

// A streamed message is cut once its values reach this size (gRPC's message limit).
constexpr size_t kMaxBatchBytes = 4 << 20;

// Functions a query may call: SQLite's scalar, aggregate, date, math and window
// functions that only compute on their arguments. Left out: functions that allocate
// at will (randomblob, zeroblob), printf/format (a width of 2^31 runs for half a minute
// past every limit), functions that reach outside the query (load_extension,
// fts3_tokenizer, which also reveals a process address) or describe the build.
const absl::flat_hash_set<std::string>& AllowedFunctions() {
  static const auto* allowed = new absl::flat_hash_set<std::string>{
      // scalar
      "abs", "char", "coalesce", "glob", "hex", "ifnull", "iif", "instr", "length", "like",
      "likelihood", "likely", "lower", "ltrim", "max", "min", "nullif", "quote", "random",
      "replace", "round", "rtrim", "sign", "soundex", "substr", "substring", "trim", "typeof",
      "unicode", "unlikely", "upper",
      // aggregate
      "avg", "count", "group_concat", "string_agg", "sum", "total",
      // date and time
      "date", "datetime", "julianday", "strftime", "time", "unixepoch",
      // math
      "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos", "cosh",
      "degrees", "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow", "power",
      "radians", "sin", "sinh", "sqrt", "tan", "tanh", "trunc",
      // window
      "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
      "first_value", "last_value", "nth_value",
      // JSON
      "json", "json_array", "json_array_length", "json_extract", "json_object", "json_quote",
      "json_type", "json_valid", "json_group_array", "json_group_object"};
  return *allowed;
}

// What the authorizer and the progress handler saw: SQLite reports a refusal as
// SQLITE_AUTH (or SQLITE_SCHEMA for schema changes) and an interrupt as
// SQLITE_INTERRUPT, without the reason.
struct QueryGuard {
  bool denied = false;
  std::string denied_function;
  absl::Time deadline;
  int64_t memory_base = 0;
  int64_t max_memory = 0;
  bool over_time = false;
  bool over_memory = false;
};

int Authorize(void* arg, int action, const char*, const char* name, const char*, const char*) {
  auto* guard = static_cast<QueryGuard*>(arg);
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_RECURSIVE:
      return SQLITE_OK;
    case SQLITE_FUNCTION:
      if (name != nullptr && AllowedFunctions().contains(absl::AsciiStrToLower(name))) {
        return SQLITE_OK;
      }
      guard->denied_function = name != nullptr ? name : "";
      break;
    default:
      break;
  }
  guard->denied = true;
  return SQLITE_DENY;
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

int CheckLimits(void* arg) {
  auto* guard = static_cast<QueryGuard*>(arg);
  if (absl::Now() > guard->deadline) {
    guard->over_time = true;
    return 1;
  }
  if (sqlite3_memory_used() - guard->memory_base > guard->max_memory) {
    guard->over_memory = true;
    return 1;
  }
  return 0;
}

absl::Status DeniedError(const QueryGuard& guard, sqlite3* db) {
  if (!guard.denied_function.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat("query denied: function ", guard.denied_function,
                     "() is not on the list of functions a query may call (docs/coordinator.md, "
                     "\"Query\")"));
  }
  return absl::PermissionDeniedError(
      absl::StrCat("query denied: only reading (SELECT) is allowed: ", sqlite3_errmsg(db)));
}

// The error of a statement that stopped with `rc`, naming the limit that stopped it.
absl::Status StepError(int rc, const QueryGuard& guard, const QueryLimits& limits,
                       const Database& db) {
  if (rc == SQLITE_INTERRUPT && guard.over_memory) {
    return absl::ResourceExhaustedError(
        absl::StrCat("query stopped at its memory limit of ", limits.max_memory_bytes >> 20,
                     " MiB: aggregate less at once, add a WHERE clause or LIMIT"));
  }
  if (rc == SQLITE_INTERRUPT) {
    return absl::ResourceExhaustedError(absl::StrCat("query stopped at its time limit of ",
                                                     absl::FormatDuration(limits.timeout),
                                                     ": add a WHERE clause or LIMIT"));
  }
  if (rc == SQLITE_TOOBIG) {
    return absl::ResourceExhaustedError(
        absl::StrCat("query stopped at the length limit: a value would exceed ",
                     limits.max_value_bytes >> 20, " MiB"));
  }
  if (rc == SQLITE_NOMEM) {
    return absl::ResourceExhaustedError("query stopped: SQLite ran out of memory");
  }
  if (rc == SQLITE_AUTH || guard.denied) return DeniedError(guard, db.raw());
  return db.Error(rc, "query");
}

// Approximate wire size of one value, to cut batches before the message limit.
size_t ValueBytes(const v1::QueryValue& v) {
  return v.text_value().size() + v.blob_value().size() + 16;
}

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
  sqlite3_limit(raw, SQLITE_LIMIT_LENGTH, limits.max_value_bytes);
  sqlite3_limit(raw, SQLITE_LIMIT_SQL_LENGTH, 1 << 20);
  QueryGuard guard;
  guard.deadline = absl::Now() + limits.timeout;
  guard.memory_base = sqlite3_memory_used();
  guard.max_memory = limits.max_memory_bytes;
  sqlite3_set_authorizer(raw, Authorize, &guard);
  sqlite3_progress_handler(raw, 1000, CheckLimits, &guard);

  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(raw, sql.c_str(), static_cast<int>(sql.size()), &stmt, &tail);
  if (rc != SQLITE_OK) {
    absl::Status s = StepError(rc, guard, limits, *db);
    sqlite3_finalize(stmt);
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
  size_t batch_bytes = 0;
  bool first = true;
  absl::Status status;
  while (true) {
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      status = StepError(rc, guard, limits, *db);
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
      batch_bytes += ValueBytes(*v);
    }
    if (out.rows_size() >= limits.batch_rows || batch_bytes >= kMaxBatchBytes) {
      batch_bytes = 0;
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
