// The one GPU memory estimate of a job on the CUDA engine (weights + KV cache + workspace),
// for the whole model or one layer range, and its split into what a layer pipeline places
// on each GPU (LayerMemoryProfile, common/layer_plan.h). The engine checks its devices with
// it, the spec sizes jobs with it (and the coordinator places them by the profile).
#ifndef SF_COMMON_GPU_MEMORY_H_
#define SF_COMMON_GPU_MEMORY_H_

#include <cstdint>

#include "common/layer_plan.h"
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

// The profile of `shape` for a sequence of `tokens` (prompt plus generated).
LayerMemoryProfile ProfileGpuMemory(const ModelShape& shape, const GpuMemorySettings& settings,
                                    int64_t tokens);

// The estimate for the GPU holding layers [first_layer, end_layer) of `shape` (the whole
// model: 0, num_layers), with the first/last stage's parts when the range starts at 0 /
// ends at num_layers. REQUIRES 0 <= first_layer < end_layer <= num_layers.
GpuMemoryEstimate EstimateGpuMemory(const ModelShape& shape, const GpuMemorySettings& settings,
                                    int64_t tokens, int64_t first_layer, int64_t end_layer);

}  // namespace sf::model

#endif  // SF_COMMON_GPU_MEMORY_H_
