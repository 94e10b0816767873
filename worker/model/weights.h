// A model's weights on the host in float32, as every backend loads them: the CPU engine
// computes with them, the CUDA engine uploads them. Projections that share an input are
// stacked (q/k/v, gate/up) so each is one GEMM.
#ifndef SF_WORKER_MODEL_WEIGHTS_H_
#define SF_WORKER_MODEL_WEIGHTS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "worker/model/safetensors.h"

namespace sf::model {

// A linear layer y = x W^T + b with W row-major [out][in], as Hugging Face stores it.
struct Linear {
  int64_t in = 0;
  int64_t out = 0;
  std::vector<float> weight;
  std::vector<float> bias;  // empty: no bias
};

struct LayerWeights {
  std::vector<float> input_norm;
  std::vector<float> post_norm;
  Linear qkv;  // q, k and v projections stacked: [(Hq + 2 Hkv) d][H]
  Linear o;
  Linear gate_up;  // gate and up stacked: [2 I][H]
  Linear down;
};

struct ModelWeights {
  std::vector<float> embed;  // [vocab][H]
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;
  Linear lm_head;  // weight empty when tied to embed
};

// Reads every tensor the engine uses from `ckpt`, converted to float32, checking shapes
// against `config`.
absl::StatusOr<ModelWeights> LoadModelWeights(const Checkpoint& ckpt, const ModelConfig& config);

}  // namespace sf::model

#endif  // SF_WORKER_MODEL_WEIGHTS_H_
