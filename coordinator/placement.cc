#include "coordinator/placement.h"

#include <algorithm>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "sf/v1/job.pb.h"

namespace sf::coordinator {
namespace {

// The first job in `st`'s order that a worker with `caps` can run.
absl::StatusOr<std::optional<PlacedJob>> FirstFit(Statement* st, const WorkerCaps& caps,
                                                  const absl::flat_hash_set<std::string>& methods) {
  // A worker without devices runs CPU-only jobs and is not limited by device memory.
  const int64_t mem_limit =
      caps.device_count == 0 ? std::numeric_limits<int64_t>::max() : caps.max_device_memory;
  std::optional<PlacedJob> found;
  while (true) {
    SF_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    const int64_t gpus = std::max<int64_t>(1, st->Int(5));
    const int64_t mem = st->Int(6);
    // memory_bytes is the job's need on one worker, spread over the model's gpus.
    if (caps.device_count > 0 && mem > mem_limit * gpus) continue;
    if (!methods.empty() && (!methods.contains(st->Text(3)) || !methods.contains(st->Text(4)))) {
      continue;
    }
    found = PlacedJob{st->Int(0), st->Text(1), st->Int(2)};
    break;
  }
  st->Reset();
  return found;
}

}  // namespace

absl::StatusOr<std::optional<PlacedJob>> PlaceJob(StatementCache& statements,
                                                  const WorkerCaps& caps, int64_t now_ms,
                                                  const PlacementPolicy& policy) {
  const std::string order =
      policy.longest_first ? " ORDER BY priority DESC, cost DESC" : " ORDER BY priority DESC, id";
  const std::string base = absl::StrCat(
      "SELECT id, key, priority, prefill_method, decode_method, gpus, memory_bytes FROM jobs "
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
