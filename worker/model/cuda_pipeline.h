// A layer pipeline over CUDA engines (EngineOptions::layer_stages, docs/engine.md): each
// stage is a CUDA engine holding a contiguous range of the model's layers and their KV
// cache on one device; the first embeds the tokens, each later one starts from the
// residual stream its upstream left, the last computes the logits. Internal to the CUDA
// backend (built with SF_WITH_CUDA): CreateCudaEngine builds the stages and this wraps them.
#ifndef SF_WORKER_MODEL_CUDA_PIPELINE_H_
#define SF_WORKER_MODEL_CUDA_PIPELINE_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/gpu_memory.h"
#include "worker/model/engine.h"
#include "worker/model/forward_engine.h"
#include "worker/model/kv_cache.h"

namespace sf::model {

// One stage: an Engine whose Prefill/Decode run the stage's layers only (a stage that does
// not hold the last layer returns no logits).
class CudaStage : public ForwardEngine {
 public:
  virtual const LayerStage& stage() const = 0;
  // The residual stream after the stage's last layer, float32 [rows][hidden_size] on
  // stage().device, for the rows of its last Prefill/Decode: complete when that call has
  // returned, valid until the stage runs again or is reset.
  virtual const float* residual() const = 0;
};

// Checks `stages` against a model of `num_layers` layers and the visible devices:
// InvalidArgument naming the stage when they do not cover [0, num_layers) in order with at
// least one layer each, or name a device that is not there.
absl::Status CheckLayerStages(absl::Span<const LayerStage> stages, int64_t num_layers,
                              int device_count);

// How the residual stream reaches each stage after the first: "same-device", "peer" (the
// GPUs copy directly; peer access enabled here) or "host" (cudaMemcpyPeer stages it
// through host memory). Internal on a CUDA error.
absl::StatusOr<std::vector<std::string>> ConnectStages(absl::Span<const LayerStage> stages);

// The Engine over `stages` (in layer order; each after the first reads its upstream's
// residual()). `mirror` is the host copy of the KV cache the stages share (each fills its
// own layers); `links` as ConnectStages gave them.
std::unique_ptr<Engine> MakeCudaPipeline(ModelConfig config, const EngineOptions& options,
                                         std::vector<std::unique_ptr<CudaStage>> stages,
                                         std::unique_ptr<KvCache> mirror,
                                         std::vector<std::string> links);

}  // namespace sf::model

#endif  // SF_WORKER_MODEL_CUDA_PIPELINE_H_
