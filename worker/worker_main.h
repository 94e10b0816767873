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

// Where Slurm placed this process, read through `getenv` (null = unset): the job id as
// squeue shows it ("<SLURM_ARRAY_JOB_ID>_<SLURM_ARRAY_TASK_ID>" for an array task, else
// SLURM_JOB_ID) and SLURMD_NODENAME. Both empty outside Slurm.
struct SlurmPlacement {
  std::string job_id;
  std::string node;
};
SlurmPlacement SlurmPlacementFromEnvironment(const std::function<const char*(const char*)>& getenv);

// Parses argv and runs a worker until SIGTERM/SIGINT or --max-jobs; returns the exit
// code (0 after a clean stop, 1 when the outbox fails, 2 for bad flags). With --health
// it only asks the coordinator's health service and exits: 0 when it is serving, 1 when
// not or unreachable.
int WorkerMain(int argc, char** argv, const WorkerMainHooks& hooks);

}  // namespace sf::worker

#endif  // SF_WORKER_WORKER_MAIN_H_
