// Engine options that every backend shares: dtype names and the CUDA memory estimate.
#include "absl/strings/str_cat.h"
#include "worker/model/engine.h"

namespace sf::model {

absl::StatusOr<ComputeDType> ParseComputeDType(absl::string_view name) {
  if (name == "float32" || name == "f32") return ComputeDType::kFloat32;
  if (name == "bfloat16" || name == "bf16") return ComputeDType::kBfloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("dtype '", name, "' is not known; use float32 or bfloat16"));
}

const char* ComputeDTypeName(ComputeDType dtype) {
  return dtype == ComputeDType::kBfloat16 ? "bfloat16" : "float32";
}

GpuMemorySettings GpuMemorySettingsFor(const EngineOptions& options) {
  const bool bf16 = options.dtype == ComputeDType::kBfloat16;
  GpuMemorySettings s;
  s.element_bytes = bf16 ? 2 : 4;
  // The CUDA engine's default chunk: 8192 tokens in bfloat16, the whole prompt in float32.
  s.prefill_chunk_tokens = options.prefill_chunk_tokens > 0 ? options.prefill_chunk_tokens
                           : bf16                           ? 8192
                                                            : 0;
  return s;
}

GpuMemoryEstimate EstimateGpuMemory(const ModelConfig& c, const EngineOptions& options,
                                    int64_t tokens) {
  return EstimateGpuMemory(c, GpuMemorySettingsFor(options), tokens, 0, c.num_layers);
}

}  // namespace sf::model
