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
};

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
};

// Follows the sweep's WatchSweep stream until it finishes or is cancelled, updating
// `display`; reconnects after a coordinator restart and resumes after the last event
// seen. Returns the sweep's final state.
absl::StatusOr<v1::Sweep> WatchUntilDone(Remote& remote, int64_t sweep_id, ProgressDisplay& display,
                                         const WatchOptions& options, Clock* clock);

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

// The matching results, one row per job, with the job's grid axes and the aggregate.
absl::StatusOr<Table> FetchResults(Remote& remote, const ResultFilters& filters);

// Every stored sample of the matching jobs (done or not), one row per sample with the
// job's grid axes, in job and sample order.
absl::StatusOr<Table> FetchSamples(Remote& remote, const ResultFilters& filters);

// (key, last error) of the first `limit` failed jobs of the sweep, in job order.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> FetchFailedJobs(Remote& remote,
                                                                                 int64_t sweep_id,
                                                                                 int64_t limit);

// Appends a Query response's rows to `table` (its columns from the first response).
// Blobs become "<blob N bytes>" with `render_blobs` (for display), else their bytes.
void AppendQueryResponse(const v1::QueryResponse& response, bool render_blobs, Table* table);

// Runs `sql` through Query and collects the rows. `truncated` is set when the server's
// row limit cut the output.
absl::StatusOr<Table> RunQuery(Remote& remote, const std::string& sql, int64_t max_rows,
                               int64_t timeout_ms, bool* truncated);

// The body of a command acting on one sweep (cancel, retry): connects, finds `sweep`
// (id or name), runs `action` and prints "sweep <id> '<name>': <what it returned>".
// Every error is reported through ReportStatus and sets *exit_code to its code.
using SweepAction = std::function<absl::StatusOr<std::string>(Remote&, const v1::Sweep&)>;
void RunSweepAction(const RemoteFlags& flags, const std::string& sweep, Io& io, int* exit_code,
                    const SweepAction& action);

}  // namespace sf::cli

#endif  // SF_CLI_SWEEP_OPS_H_
