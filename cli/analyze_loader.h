// Loads one sweep's results from the coordinator database (a file, or a coordinator's
// read-only Query RPC) into analysis::AnalysisInput for `sfctl analyze` and `sfctl run`.
#ifndef SF_CLI_ANALYZE_LOADER_H_
#define SF_CLI_ANALYZE_LOADER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "analysis/result_point.h"
#include "cli/remote.h"
#include "cli/table.h"

namespace sf::cli {

// Runs one read-only SELECT and returns every row (blobs as their raw bytes, in a
// string cell). The loader pages large tables itself.
using SqlSource = std::function<absl::StatusOr<Table>(const std::string& sql)>;

// Reads the database file `db_path` through its own read-only connection (the
// coordinator's Query rules: only reading is allowed). NotFound when the file is absent.
absl::StatusOr<SqlSource> DatabaseSource(const std::string& db_path);
// Sends each SELECT to the coordinator's Query RPC. `remote` must outlive the source.
SqlSource CoordinatorSource(Remote* remote);

struct LoadedSweep {
  int64_t sweep_id = 0;
  std::string sweep_name;
  int64_t jobs_total = 0;
  int64_t jobs_done = 0;
  // One point per done job (with its samples) and one without samples per job not done
  // yet, so that the report lists it as missing.
  analysis::AnalysisInput input;
  std::vector<std::string> random_weight_models;  // sorted
  // Jobs left out (both phases sparse; not done and the model's shape unknown) and
  // architectures read from config.json because the result did not record them.
  std::vector<std::string> warnings;
};

// Loads the sweep named by `id_or_name` (digits = id, else the name). Errors:
// NotFound for an unknown sweep (the message lists the existing ones),
// FailedPrecondition when it has no finished job, or when a finished job's model has
// no recorded architecture and its config.json cannot be read (the message says why).
// When any model has random weights, input.caveat says so.
absl::StatusOr<LoadedSweep> LoadSweep(const SqlSource& sql, const std::string& id_or_name);

}  // namespace sf::cli

#endif  // SF_CLI_ANALYZE_LOADER_H_
