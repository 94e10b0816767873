#include "coordinator/results_reader.h"

#include <algorithm>
#include <filesystem>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "coordinator/job_store.h"
#include "coordinator/schema.h"

namespace sf::coordinator {
namespace {

// The SQL of one Results request and the values to bind to its placeholders, in order.
struct ResultsQuery {
  std::string sql;
  std::vector<std::function<void(Statement*, int)>> binds;
};

// The larger compression target of a job's two phases (dense = 1).
constexpr char kJobCompression[] =
    "MAX(COALESCE(j.prefill_compression, 1), COALESCE(j.decode_compression, 1))";

// Appends " AND column IN (?,...)" for a non-empty list of values.
template <typename Values>
void AddInList(const char* column, const Values& values, ResultsQuery* q) {
  if (values.empty()) return;
  absl::StrAppend(&q->sql, " AND ", column, " IN (");
  for (int i = 0; i < values.size(); ++i) {
    absl::StrAppend(&q->sql, i ? ",?" : "?");
    auto v = values[i];
    q->binds.push_back([v](Statement* s, int idx) {
      if constexpr (std::is_same_v<decltype(v), uint64_t>) {
        s->Bind(idx, static_cast<int64_t>(v));
      } else if constexpr (std::is_enum_v<decltype(v)> || std::is_same_v<decltype(v), int>) {
        s->Bind(idx, static_cast<int64_t>(v));
      } else {
        s->Bind(idx, v);
      }
    });
  }
  absl::StrAppend(&q->sql, ")");
}

void AddDoubleBind(double v, ResultsQuery* q) {
  q->binds.push_back([v](Statement* s, int idx) { s->Bind(idx, v); });
}

// The WHERE clause of `request`'s filters (every one conjunctive).
void AddFilters(const v1::ResultsRequest& request, ResultsQuery* q) {
  absl::StrAppend(&q->sql, " WHERE 1");
  if (request.sweep_id() != 0) {
    absl::StrAppend(&q->sql, " AND j.id IN (SELECT job_id FROM sweep_jobs WHERE sweep_id=?)");
    const int64_t id = request.sweep_id();
    q->binds.push_back([id](Statement* s, int idx) { s->Bind(idx, id); });
  }
  AddInList("j.model_name", request.models(), q);
  AddInList("j.sequence_length", request.sequence_lengths(), q);
  AddInList("j.prefill_method", request.prefill_methods(), q);
  AddInList("j.decode_method", request.decode_methods(), q);
  AddInList("j.task", request.tasks(), q);
  AddInList("j.seed", request.seeds(), q);
  AddInList("j.state", request.states(), q);
  if (request.methods_size() > 0) {
    // Either phase: the same values bound twice.
    absl::StrAppend(&q->sql, " AND ((1");
    AddInList("j.prefill_method", request.methods(), q);
    absl::StrAppend(&q->sql, ") OR (1");
    AddInList("j.decode_method", request.methods(), q);
    absl::StrAppend(&q->sql, "))");
  }
  if (request.compressions_size() > 0) {
    absl::StrAppend(&q->sql, " AND (0");
    for (double v : request.compressions()) {
      absl::StrAppend(&q->sql, " OR ABS(", kJobCompression, " - ?) < 1e-9");
      AddDoubleBind(v, q);
    }
    absl::StrAppend(&q->sql, ")");
  }
  if (request.has_min_compression()) {
    absl::StrAppend(&q->sql, " AND ", kJobCompression, " >= ?");
    AddDoubleBind(request.min_compression(), q);
  }
  if (request.has_max_compression()) {
    absl::StrAppend(&q->sql, " AND ", kJobCompression, " <= ?");
    AddDoubleBind(request.max_compression(), q);
  }
}

// Columns: 0 spec, 1 state, 2 last_error, 3 has a result, 4 job id, 5... the result.
ResultsQuery BuildResultsQuery(int schema_version, const v1::ResultsRequest& request) {
  ResultsQuery q;
  q.sql = absl::StrCat("SELECT j.spec, j.state, j.last_error, r.job_id IS NOT NULL, j.id, ",
                       ResultColumns(schema_version),
                       request.include_unfinished()
                           ? " FROM jobs j LEFT JOIN results r ON r.job_id=j.id"
                           : " FROM results r JOIN jobs j ON j.id=r.job_id");
  AddFilters(request, &q);
  absl::StrAppend(
      &q.sql, request.newest_first() ? " ORDER BY j.updated_ms DESC, j.id DESC" : " ORDER BY j.id");
  if (request.limit() > 0) absl::StrAppend(&q.sql, " LIMIT ", request.limit());
  return q;
}

}  // namespace

absl::Status ReadResults(Database* db, int schema_version, const v1::ResultsRequest& request,
                         const ResultsSink& sink) {
  ResultsQuery q = BuildResultsQuery(schema_version, request);
  if (q.binds.size() > 900) {
    return absl::InvalidArgumentError("too many filter values (at most 900 in all)");
  }
  const int page = request.page_size() > 0 ? std::min(request.page_size(), 10000) : 1000;
  // Filter combinations vary: prepare once per call instead of caching each shape.
  SF_ASSIGN_OR_RETURN(auto st, db->Prepare(q.sql));
  for (size_t i = 0; i < q.binds.size(); ++i) q.binds[i](st.get(), static_cast<int>(i + 1));
  std::unique_ptr<Statement> samples;
  if (request.include_samples()) {
    SF_ASSIGN_OR_RETURN(samples, db->Prepare(kJobSamplesSql));
  }
  v1::ResultsResponse out;
  while (true) {
    SF_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    v1::ResultRow* r = out.add_rows();
    r->mutable_job()->ParseFromString(st->Blob(0));
    r->set_state(static_cast<v1::JobState>(st->Int(1)));
    r->set_last_error(st->Text(2));
    if (st->Int(3) != 0) ReadResultRow(*st, 5, r->mutable_result());
    if (samples != nullptr) {
      samples->Bind(1, st->Int(4));
      while (true) {
        SF_ASSIGN_OR_RETURN(bool sample_row, samples->Step());
        if (!sample_row) break;
        ReadSampleRow(*samples, request.include_sample_text(), r->add_samples());
      }
      samples->Reset();
    }
    if (out.rows_size() >= page) {
      if (!sink(out)) return absl::OkStatus();
      out.Clear();
    }
  }
  if (out.rows_size() > 0) sink(out);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<DatabaseResults>> DatabaseResults::Open(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("no coordinator database '", path, "'"));
  }
  SF_ASSIGN_OR_RETURN(auto db, Database::OpenReadOnly(path));
  auto version = db->Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version");
  absl::StatusOr<bool> row = version.ok() ? (*version)->Step() : version.status();
  if (!row.ok() || !*row) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a coordinator database (it has no schema_version table)"));
  }
  const int schema_version = static_cast<int>((*version)->Int(0));
  version->reset();
  if (schema_version > CurrentSchemaVersion()) {
    return absl::FailedPreconditionError(
        absl::StrCat("database ", path, " has schema version ", schema_version,
                     " but this build knows only ", CurrentSchemaVersion(), ": use a newer sfctl"));
  }
  return std::unique_ptr<DatabaseResults>(new DatabaseResults(std::move(db), schema_version));
}

absl::StatusOr<v1::Sweep> DatabaseResults::GetSweep(const v1::GetSweepRequest& request) {
  const bool by_name = request.sweep_case() == v1::GetSweepRequest::kName;
  if (!by_name && request.sweep_case() != v1::GetSweepRequest::kId) {
    return absl::InvalidArgumentError("give a sweep id or name");
  }
  SF_ASSIGN_OR_RETURN(auto st,
                      db_->Prepare(absl::StrCat("SELECT ", kSweepColumns, " FROM sweeps WHERE ",
                                                by_name ? "name=?" : "id=?")));
  if (by_name) {
    st->Bind(1, request.name());
  } else {
    st->Bind(1, request.id());
  }
  SF_ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) {
    return absl::NotFoundError(by_name ? absl::StrCat("no sweep named '", request.name(), "'")
                                       : absl::StrCat("no sweep with id ", request.id()));
  }
  return ReadSweepRow(*st);
}

absl::StatusOr<v1::ListSweepsResponse> DatabaseResults::ListSweeps(
    const v1::ListSweepsRequest& request) {
  const int limit = request.limit() > 0 ? std::min(request.limit(), 10000) : 100;
  SF_ASSIGN_OR_RETURN(
      auto st, db_->Prepare(absl::StrCat("SELECT ", kSweepColumns, " FROM sweeps WHERE ? OR state=",
                                         v1::SWEEP_STATE_RUNNING, " ORDER BY id DESC LIMIT ?")));
  st->Bind(1, request.include_finished() ? 1 : 0).Bind(2, limit);
  v1::ListSweepsResponse response;
  while (true) {
    SF_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    *response.add_sweeps() = ReadSweepRow(*st);
  }
  return response;
}

absl::Status DatabaseResults::Results(const v1::ResultsRequest& request, const ResultsSink& sink) {
  return ReadResults(db_.get(), schema_version_, request, sink);
}

}  // namespace sf::coordinator
