// The sf-worker process around the Worker loop: flags, device discovery, outbox, gRPC
// client, SIGTERM/SIGINT handling. The evaluator is a hook, so the production binary
// and the tests' worker binary share everything else.
#ifndef SF_WORKER_WORKER_MAIN_H_
#define SF_WORKER_WORKER_MAIN_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "sf/v1/coordinator.pb.h"
#include "worker/evaluator.h"

namespace sf::worker {

struct WorkerMainHooks {
  // Makes the evaluator, given the backends this machine offers ("cuda", "cpu").
  std::function<std::unique_ptr<Evaluator>(const std::vector<std::string>& backends)>
      make_evaluator;
  // Adds flags of the evaluator's own (read by make_evaluator after parsing).
  std::function<void(CLI::App&)> add_flags;
  std::string description;  // replaces the --help text when set
};

// This machine's CUDA devices as a worker registers them (empty in a build without
// CUDA or on a machine without a GPU); an error when listing them failed.
absl::StatusOr<std::vector<v1::Device>> LocalDevices();

// Parses argv and runs a worker until SIGTERM/SIGINT or --max-jobs; returns the exit
// code (0 after a clean stop, 1 when the outbox fails, 2 for bad flags).
int WorkerMain(int argc, char** argv, const WorkerMainHooks& hooks);

}  // namespace sf::worker

#endif  // SF_WORKER_WORKER_MAIN_H_
