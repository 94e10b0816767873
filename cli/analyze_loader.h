// Loads one sweep's results, with their per-sample scores, through the coordinator's
// read API (a database file read by coordinator/results_reader.h, or a coordinator's
// Results RPC) into analysis::AnalysisInput for `sfctl analyze` and `sfctl run`.
#ifndef SF_CLI_ANALYZE_LOADER_H_
#define SF_CLI_ANALYZE_LOADER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "analysis/result_point.h"
#include "cli/read_source.h"

namespace sf::cli {

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
absl::StatusOr<LoadedSweep> LoadSweep(ResultsSource& source, const std::string& id_or_name);

}  // namespace sf::cli

#endif  // SF_CLI_ANALYZE_LOADER_H_
