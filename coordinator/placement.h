// Placement: which queued job a worker gets next. Among QUEUED jobs whose backoff has
// passed and that fit the worker (GPUs, device memory, methods; a job with a GPU memory
// profile fits when its layers can be cut over the worker's GPUs, common/layer_plan.h),
// the highest priority
// first, then the highest cost (longest first); a job of a model the worker has loaded
// goes first when it fits at the same or a higher priority (docs/coordinator.md,
// "State machine").
#ifndef SF_COORDINATOR_PLACEMENT_H_
#define SF_COORDINATOR_PLACEMENT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/job_store.h"
#include "sf/v1/job.pb.h"

namespace sf::coordinator {

// What a registered worker can run.
struct WorkerCaps {
  int64_t max_device_memory = 0;
  int device_count = 0;  // 0: CPU only, no memory limit
  // Per device, the bytes a job may use: free at registration when the worker reported
  // it, else the total.
  std::vector<int64_t> device_memory;
  std::vector<std::string> methods;        // empty: any
  std::vector<std::string> loaded_models;  // model identities, for affinity
};

struct PlacementPolicy {
  bool model_affinity = true;
  bool longest_first = true;  // else the oldest job first among equal priorities
};

// The job chosen for a worker.
struct PlacedJob {
  int64_t id = 0;
  std::string key;
  int64_t priority = 0;
};

// OK when a worker with `caps` can hold a job that needs `gpus` GPUs (0: a CPU is fine),
// `memory_bytes` on one worker and, when given, the GPU memory `profile`: cut over the
// worker's GPUs by PlanLayerStages (common/layer_plan.h), else memory_bytes spread over
// `gpus` GPUs of the largest. Otherwise ResourceExhausted (FailedPrecondition for too
// few GPUs) saying what the job needs and what the worker has.
absl::Status WorkerCanHold(const WorkerCaps& caps, int64_t gpus, int64_t memory_bytes,
                           const v1::GpuMemoryProfile* profile);

// The best queued job for a worker with `caps` at `now_ms`, or nullopt when none fits.
// Reads only; the caller leases the job. Errors come from the database.
absl::StatusOr<std::optional<PlacedJob>> PlaceJob(StatementCache& statements,
                                                  const WorkerCaps& caps, int64_t now_ms,
                                                  const PlacementPolicy& policy);

}  // namespace sf::coordinator

#endif  // SF_COORDINATOR_PLACEMENT_H_
