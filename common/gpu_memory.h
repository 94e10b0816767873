// The one GPU memory estimate of a job on the CUDA engine (weights + KV cache + workspace),
// split into what a layer pipeline places on each GPU, and the plan that cuts a model's
// decoder layers into contiguous ranges over a worker's GPUs. The engine checks its
// devices with it, the spec sizes jobs with it, the coordinator places jobs with it.
#ifndef SF_COMMON_GPU_MEMORY_H_
#define SF_COMMON_GPU_MEMORY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/model_config.h"

namespace sf::model {

// Device memory a CUDA engine (or one stage of it) needs for one job, in bytes.
struct GpuMemoryEstimate {
  int64_t weights = 0;    // every weight held, in the engine's dtype, norms in float32
  int64_t kv_cache = 0;   // keys and values of `tokens` rows per KV head, layers held
  int64_t workspace = 0;  // activations of one prefill chunk, logits, GEMM and attention
                          // workspaces
  int64_t total() const { return weights + kv_cache + workspace; }
};

// What the estimate depends on beyond the model's shape.
struct GpuMemorySettings {
  int64_t element_bytes = 2;  // weights, activations and KV cache: 2 (bf16) or 4 (float32)
  // Tokens per prefill chunk (activations are one chunk's); 0: the whole sequence.
  int64_t prefill_chunk_tokens = 8192;
};

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

// The profile of `shape` for a sequence of `tokens` (prompt plus generated).
LayerMemoryProfile ProfileGpuMemory(const ModelShape& shape, const GpuMemorySettings& settings,
                                    int64_t tokens);

// The estimate for the GPU holding layers [first_layer, end_layer) of `shape` (the whole
// model: 0, num_layers), with the first/last stage's parts when the range starts at 0 /
// ends at num_layers. REQUIRES 0 <= first_layer < end_layer <= num_layers.
GpuMemoryEstimate EstimateGpuMemory(const ModelShape& shape, const GpuMemorySettings& settings,
                                    int64_t tokens, int64_t first_layer, int64_t end_layer);

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

#endif  // SF_COMMON_GPU_MEMORY_H_
