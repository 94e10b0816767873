#include "coordinator/placement.h"

#include <algorithm>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/layer_plan.h"
#include "common/status.h"
#include "sf/v1/job.pb.h"

namespace sf::coordinator {
namespace {

// The first job in `st`'s order that a worker with `caps` can run.
absl::StatusOr<std::optional<PlacedJob>> FirstFit(Statement* st, const WorkerCaps& caps,
                                                  const absl::flat_hash_set<std::string>& methods) {
  std::optional<PlacedJob> found;
  v1::JobSpec spec;
  while (true) {
    SF_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    if (!methods.empty() && (!methods.contains(st->Text(3)) || !methods.contains(st->Text(4)))) {
      continue;
    }
    // A worker without devices runs CPU-only jobs and is not limited by device memory.
    if (caps.device_count > 0) {
      // The profile travels in the stored spec (checked when it was submitted).
      const std::string blob = st->Blob(7);
      const bool parsed = spec.ParseFromArray(blob.data(), static_cast<int>(blob.size()));
      const v1::GpuMemoryProfile* profile =
          parsed && spec.has_gpu_memory() ? &spec.gpu_memory() : nullptr;
      if (!WorkerCanHold(caps, st->Int(5), st->Int(6), profile).ok()) continue;
    }
    found = PlacedJob{st->Int(0), st->Text(1), st->Int(2)};
    break;
  }
  st->Reset();
  return found;
}

double GiB(int64_t bytes) { return static_cast<double>(bytes) / (1 << 30); }

}  // namespace

absl::Status WorkerCanHold(const WorkerCaps& caps, int64_t gpus, int64_t memory_bytes,
                           const v1::GpuMemoryProfile* profile) {
  if (gpus > caps.device_count) {
    return absl::FailedPreconditionError(
        absl::StrCat("the job needs ", gpus, " GPU(s); the worker has ", caps.device_count));
  }
  if (caps.device_count == 0) return absl::OkStatus();
  if (profile != nullptr) {
    const model::LayerMemoryProfile p{.layers = profile->layers(),
                                      .per_layer_bytes = profile->per_layer_bytes(),
                                      .first_stage_bytes = profile->first_stage_bytes(),
                                      .last_stage_bytes = profile->last_stage_bytes(),
                                      .per_stage_bytes = profile->per_stage_bytes(),
                                      .shared_end_bytes = profile->shared_end_bytes()};
    std::vector<int64_t> devices = caps.device_memory;
    if (devices.empty())
      devices.assign(static_cast<size_t>(caps.device_count), caps.max_device_memory);
    return PlanLayerStages(p, devices).status();
  }
  // memory_bytes is the job's need on one worker, spread over the model's gpus.
  const int64_t limit = caps.max_device_memory * std::max<int64_t>(1, gpus);
  if (memory_bytes <= limit) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "the job needs about ", GiB(memory_bytes), " GiB over ", std::max<int64_t>(1, gpus),
      " GPU(s); the worker's largest GPU has ", GiB(caps.max_device_memory), " GiB"));
}

absl::StatusOr<std::optional<PlacedJob>> PlaceJob(StatementCache& statements,
                                                  const WorkerCaps& caps, int64_t now_ms,
                                                  const PlacementPolicy& policy) {
  const std::string order =
      policy.longest_first ? " ORDER BY priority DESC, cost DESC" : " ORDER BY priority DESC, id";
  const std::string base = absl::StrCat(
      "SELECT id, key, priority, prefill_method, decode_method, gpus, memory_bytes, spec FROM jobs "
      "WHERE state=",
      static_cast<int>(v1::JOB_STATE_QUEUED), " AND next_attempt_ms<=? AND gpus<=?");
  const absl::flat_hash_set<std::string> methods(caps.methods.begin(), caps.methods.end());
  SF_ASSIGN_OR_RETURN(Statement * any, statements.Get(base + order));
  any->Bind(1, now_ms).Bind(2, caps.device_count);
  SF_ASSIGN_OR_RETURN(std::optional<PlacedJob> best, FirstFit(any, caps, methods));
  if (!best || !policy.model_affinity) return best;
  SF_ASSIGN_OR_RETURN(Statement * same, statements.Get(base + " AND model_identity=?" + order));
  for (const std::string& model : caps.loaded_models) {
    same->Bind(1, now_ms).Bind(2, caps.device_count).Bind(3, model);
    SF_ASSIGN_OR_RETURN(std::optional<PlacedJob> mine, FirstFit(same, caps, methods));
    // Affinity never jumps a higher priority.
    if (mine && mine->priority >= best->priority) return mine;
  }
  return best;
}

}  // namespace sf::coordinator
