// How a job's GPU memory splits over a layer pipeline (LayerMemoryProfile), and the plan
// that cuts a model's decoder layers into contiguous ranges over a worker's GPUs
// (PlanLayerStages). The coordinator places jobs with it, the worker and the engine cut
// models with it; common/gpu_memory.h computes the profile from a model's shape.
#ifndef SF_COMMON_LAYER_PLAN_H_
#define SF_COMMON_LAYER_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace sf::model {

// A job's memory as a layer pipeline places it: every GPU holds per_stage_bytes and its
// layers' per_layer_bytes each; the GPU of layer 0 also holds first_stage_bytes
// (embeddings), the GPU of the last layer last_stage_bytes (final norm, lm_head). When the
// lm_head is the embedding matrix (tied) and one GPU holds both ends, it is held once:
// shared_end_bytes is subtracted.
struct LayerMemoryProfile {
  int64_t layers = 0;
  int64_t per_layer_bytes = 0;    // one decoder layer's weights and KV cache
  int64_t first_stage_bytes = 0;  // the embedding matrix
  int64_t last_stage_bytes = 0;   // the final norm and the lm_head
  int64_t per_stage_bytes = 0;    // activations, logits and workspaces, on every GPU
  int64_t shared_end_bytes = 0;   // tied embeddings: held once when one GPU has both ends

  // Bytes the GPU holding layers [first, end) needs.
  int64_t StageBytes(int64_t first, int64_t end) const;
  // The whole model on one GPU.
  int64_t TotalBytes() const { return StageBytes(0, layers); }
  // InvalidArgument naming the field when a size is negative or layers < 1.
  absl::Status Validate() const;
};

// One stage of a layer pipeline: layers [first_layer, end_layer) on CUDA device `device`.
struct LayerStage {
  int device = 0;
  int64_t first_layer = 0;
  int64_t end_layer = 0;
};

// Cuts `profile`'s layers into contiguous ranges over the fewest GPUs whose
// `device_bytes` (memory each GPU can give the job, by device index) hold them: one GPU
// when one can hold the whole model; else, for k = 2, 3, ..., the k GPUs with the most
// memory (in device order), with the layers spread as evenly as their memory allows.
// ResourceExhausted, saying what the job needs and what the GPUs have, when all of them
// together cannot hold it; InvalidArgument for an invalid profile or a negative size.
absl::StatusOr<std::vector<LayerStage>> PlanLayerStages(const LayerMemoryProfile& profile,
                                                        absl::Span<const int64_t> device_bytes);

// "[0,40)@0 [40,80)@1": stages for logs and errors.
std::string DescribeStages(absl::Span<const LayerStage> stages);

}  // namespace sf::model

#endif  // SF_COMMON_LAYER_PLAN_H_
