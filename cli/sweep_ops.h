// Operations shared by several sfctl commands (submit and run submit; watch and run
// watch; results, export and run print results; cancel and retry).
#ifndef SF_CLI_SWEEP_OPS_H_
#define SF_CLI_SWEEP_OPS_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/command.h"
#include "cli/progress.h"
#include "cli/read_source.h"
#include "cli/remote.h"
#include "cli/table.h"
#include "common/clock.h"
#include "sf/v1/coordinator.pb.h"

namespace sf::cli {

struct SubmitFlags {
  std::string spec_path;
  std::string name;  // overrides the spec's name
  bool force = false;
  int priority = 0;
  int max_attempts = 0;
  // "key=value" spec overrides (ApplySpecOverrides in common/spec.h), recorded with the
  // sweep's spec text.
  std::vector<std::string> overrides;
};

// Adds --set key=value (repeatable) to `cmd`.
void AddSpecOverrideFlag(CLI::App* cmd, std::vector<std::string>* overrides);

// Parses, validates and expands the spec into a request. InvalidArgument lists every
// error of an invalid spec (file:line:column); nothing is sent then.
absl::StatusOr<v1::SubmitSweepRequest> BuildSubmitRequest(const SubmitFlags& flags);

// Sends the request and prints "sweep <id> '<name>': N jobs (Q queued, R reused)".
absl::StatusOr<v1::SubmitSweepResponse> Submit(Remote& remote,
                                               const v1::SubmitSweepRequest& request, Io& io);

struct WatchOptions {
  // Gives up (Unavailable) after the coordinator has been unreachable this long.
  absl::Duration reconnect_limit = absl::Minutes(5);
  absl::Duration backoff_initial = absl::Milliseconds(200);
  absl::Duration backoff_max = absl::Seconds(5);
  // Called with every event the stream delivers (a failure's message says why).
  std::function<void(const v1::SweepEvent&)> on_event;
  // Also follow a sweep that is already over, from its first event (its history, e.g.
  // for watch --format json); otherwise such a sweep returns at once.
  bool replay_finished = false;
  // Called before each reconnection attempt with how long the coordinator has been
  // unreachable.
  std::function<void(absl::Duration down_for)> on_reconnecting;
};

// Follows the sweep's WatchSweep stream until it finishes or is cancelled, updating
// `display`; reconnects after a coordinator restart and resumes after the last event
// seen. Returns the sweep's final state.
absl::StatusOr<v1::Sweep> WatchUntilDone(Remote& remote, int64_t sweep_id, ProgressDisplay& display,
                                         const WatchOptions& options, Clock* clock);

// Sets `options`' hooks to show on `display` why jobs fail (a note per failed or retried
// attempt) and, while the coordinator is unreachable, a "reconnecting" notice.
void ShowWatchNotes(ProgressDisplay* display, WatchOptions* options);

// Result filters on every grid axis (empty = any).
struct ResultFilters {
  std::string sweep;  // id or name
  std::vector<std::string> models;
  std::vector<int64_t> lengths;
  std::vector<std::string> methods;  // either phase
  std::vector<std::string> prefill;
  std::vector<std::string> decode;
  std::vector<std::string> tasks;
  std::vector<uint64_t> seeds;
  std::vector<double> compressions;  // exact targets (either phase; dense counts as 1)
  double min_compression = 0;        // 0 = none
  double max_compression = 0;
  int64_t limit = 0;
};

// Adds the filter flags to `cmd`.
void AddResultFilterFlags(CLI::App* cmd, ResultFilters* filters);

// The matching jobs with a result, in job order (the sweep filter is looked up by id or
// name first: NotFound names it).
absl::StatusOr<std::vector<v1::ResultRow>> FetchResultRows(ReadSource& source,
                                                           const ResultFilters& filters);

// One row per job with every grid axis and the aggregate (what CSV and JSON print).
Table WideResultsTable(const std::vector<v1::ResultRow>& rows);

// The terminal's default: short keys, the sparse method with its phase and compression
// in three columns, and no metric column; `legend` gets one line per task naming its
// metric ("metric: ruler_niah = accuracy (...)").
Table CompactResultsTable(const std::vector<v1::ResultRow>& rows, std::string* legend);

// Prints `rows` in `format`: for kTable the compact table and its metric legend unless
// `wide`, and "(no matching results)" when there are none; CSV and JSON always wide.
void PrintResults(const std::vector<v1::ResultRow>& rows, Format format, bool wide,
                  std::ostream& out);

// FetchResultRows as the wide table (export).
absl::StatusOr<Table> FetchResults(ReadSource& source, const ResultFilters& filters);

// Every stored sample of the matching jobs (done or not), one row per sample with the
// job's grid axes, in job and sample order; `filters.limit` counts samples.
absl::StatusOr<Table> FetchSamples(ReadSource& source, const ResultFilters& filters);

// A failed job and why, for status, watch and run.
struct FailedJob {
  std::string key;
  std::string axes;  // "tiny L=512 prefill streaming@4 ruler_niah seed 7"
  std::string error;
};

// The sweep's `limit` most recently failed jobs, the latest first.
absl::StatusOr<std::vector<FailedJob>> FetchFailedJobs(ReadSource& source, int64_t sweep_id,
                                                       int64_t limit);

// Prints "  <key12> <axes>: <error>" per job under a heading line.
void PrintFailedJobs(const std::vector<FailedJob>& failed, int64_t failed_total, std::ostream& out);

// The job's grid axes on one line (FailedJob::axes).
std::string DescribeJobAxes(const v1::JobSpec& job);

// Appends a Query response's rows to `table` (its columns from the first response).
// Blobs become "<blob N bytes>" with `render_blobs` (for display), else their bytes.
void AppendQueryResponse(const v1::QueryResponse& response, bool render_blobs, Table* table);

// Runs `sql` through Query and collects the rows. `truncated` is set when the row limit
// cut the output.
absl::StatusOr<Table> RunQuery(ReadSource& source, const std::string& sql, int64_t max_rows,
                               int64_t timeout_ms, bool* truncated);

// The body of a command acting on one sweep (cancel, retry): connects, finds `sweep`
// (id or name), runs `action` and prints "sweep <id> '<name>': <what it returned>".
// Every error is reported through ReportStatus and sets *exit_code to its code.
using SweepAction = std::function<absl::StatusOr<std::string>(Remote&, const v1::Sweep&)>;
void RunSweepAction(const RemoteFlags& flags, const std::string& sweep, Io& io, int* exit_code,
                    const SweepAction& action);

}  // namespace sf::cli

#endif  // SF_CLI_SWEEP_OPS_H_
