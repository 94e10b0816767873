// Read-only SQL for `sfctl query`: a fresh SQLITE_OPEN_READONLY connection, an
// authorizer that denies everything but reading, a time limit and a row limit.
#ifndef SF_COORDINATOR_QUERY_H_
#define SF_COORDINATOR_QUERY_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "sf/v1/coordinator.pb.h"

namespace sf::coordinator {

struct QueryLimits {
  int64_t max_rows = 100000;
  absl::Duration timeout = absl::Seconds(10);
  int batch_rows = 500;  // rows per streamed message
  // SQLite memory the query may add (sorts, strings, aggregates); measured across the
  // process, so concurrent queries count against each other.
  int64_t max_memory_bytes = 256 << 20;
  // Longest string or blob a query may build (SQLITE_LIMIT_LENGTH).
  int max_value_bytes = 16 << 20;
};

// Runs one SELECT statement against the database file `db_path` and streams its rows
// to `sink` (the first message carries the column names; `truncated` is set on the
// last one when max_rows cut the output). Stops early when `sink` returns false.
// Errors: PermissionDenied for anything but reading (writes, ATTACH, PRAGMA...),
// InvalidArgument for bad SQL or more than one statement, DeadlineExceeded past the
// time limit.
absl::Status RunReadOnlyQuery(const std::string& db_path, const std::string& sql,
                              const QueryLimits& limits,
                              const std::function<bool(v1::QueryResponse&)>& sink);

}  // namespace sf::coordinator

#endif  // SF_COORDINATOR_QUERY_H_
