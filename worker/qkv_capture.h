// Captures one layer's Q/K/V during a model's prefill, so attention fidelity can be
// measured on real activations (sfctl dump-qkv, then sfctl fidelity --dump).
#ifndef SF_WORKER_QKV_CAPTURE_H_
#define SF_WORKER_QKV_CAPTURE_H_

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/tokenizer.h"
#include "kernels/cpu/fidelity.h"
#include "worker/model/engine.h"

namespace sf::worker {

// Resets `engine`, prefills `prompt` with dense attention and returns layer `layer`'s
// queries after RoPE [Hq, L, D] and its keys (after RoPE) and values [Hkv, L, D], as the
// attention of that layer saw them. The engine is left reset with dense attention.
// InvalidArgument for a layer outside [0, num_layers) or an empty prompt.
absl::StatusOr<kernels::LayerQkv> CaptureLayerQkv(model::Engine& engine,
                                                  absl::Span<const TokenId> prompt, int layer);

}  // namespace sf::worker

#endif  // SF_WORKER_QKV_CAPTURE_H_
