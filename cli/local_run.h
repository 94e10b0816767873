// `sfctl run`: the embedded default. Starts a coordinator in this process (its SQLite
// database in the working folder), local workers over loopback gRPC, submits the spec,
// shows progress until the sweep finishes, prints the results table and the analysis
// summary with the path of its HTML report. Running it again
// resumes: finished jobs are reused and stored samples are kept.
#ifndef SF_CLI_LOCAL_RUN_H_
#define SF_CLI_LOCAL_RUN_H_

#include <functional>
#include <memory>
#include <string>

#include "cli/analyze.h"
#include "cli/command.h"
#include "cli/sweep_ops.h"
#include "proto/sf/v1/coordinator.pb.h"
#include "worker/evaluator.h"

namespace sf::cli {

struct LocalRunOptions {
  SubmitFlags submit;
  std::string db_path = kDefaultRunDatabase;
  int workers = 1;
  std::string format = "table";  // of the final results table
  absl::Duration lease_ttl = absl::Seconds(60);
  // What the local workers register (the GPUs they evaluate on; empty on the CPU).
  std::vector<v1::Device> devices;
  // After the results table: analyse the sweep and write its report (plots are
  // optional here: without gnuplot the report has tables only, and the run still
  // succeeds).
  bool analyze = true;
  AnalyzeOptions analysis;
};

// Makes the evaluator of local worker `index` (0-based).
using EvaluatorFactory = std::function<std::unique_ptr<worker::Evaluator>(int index)>;

// Runs the sweep to completion and returns the exit code: 0 when every job is done, 1
// when some failed (their errors are printed), 2 for an invalid spec.
int RunLocally(const LocalRunOptions& options, const EvaluatorFactory& evaluators, Io& io);

}  // namespace sf::cli

#endif  // SF_CLI_LOCAL_RUN_H_
