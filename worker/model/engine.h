// The model engine's backend-independent interface: an Engine holds one model's
// weights and one sequence's KV cache; Prefill runs a prompt, Decode one token.
// Backends (CPU, CUDA) implement it; CreateEngine picks one by name.
#ifndef SF_WORKER_MODEL_ENGINE_H_
#define SF_WORKER_MODEL_ENGINE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/model_config.h"
#include "common/tokenizer.h"
#include "worker/model/attention.h"
#include "worker/model/kv_cache.h"

namespace sf::model {

enum class BackendKind { kCpu, kCuda };
absl::StatusOr<BackendKind> ParseBackendKind(absl::string_view name);  // "cpu", "cuda"

struct EngineOptions {
  BackendKind backend = BackendKind::kCpu;
  int num_threads = 0;  // CPU: 0 means all hardware threads
  int page_size = 16;   // Quest page size of the KV cache
  // Rows reserved per KV head up front (0: grow as needed).
  int64_t reserve_tokens = 0;
  // When set, replaces the model's RoPE scaling (e.g. StudyYarnScaling).
  std::optional<RopeScaling> rope_override;
};

// Where time went, for benchmarks and job records.
struct EngineCounters {
  int64_t tokens_prefilled = 0;
  int64_t tokens_decoded = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
  AttentionStats prefill_attention;
  AttentionStats decode_attention;
};

class Engine {
 public:
  virtual ~Engine() = default;

  virtual const ModelConfig& config() const = 0;

  // Runs `tokens` (appended after whatever the cache holds) through the model and
  // returns the logits of the last position [vocab_size]; with `all_positions`,
  // the logits of every position, [tokens.size()][vocab_size]. InvalidArgument for an
  // empty input or a token outside the vocabulary; OutOfRange past the model's
  // sliding window. After an error the cache is undefined: call Reset.
  virtual absl::StatusOr<std::vector<float>> Prefill(absl::Span<const TokenId> tokens,
                                                     bool all_positions = false) = 0;
  // One decode step: appends `token` and returns the next-token logits.
  virtual absl::StatusOr<std::vector<float>> Decode(TokenId token) = 0;

  // Empties the cache and zeroes the position (weights stay loaded).
  virtual void Reset() = 0;
  // Tokens processed since Reset (the next token's position).
  virtual int64_t position() const = 0;
  virtual KvCache& cache() = 0;

  // Attention methods for each phase; nullptr restores dense. Not owned: each must
  // outlive its use. After each layer's prefill, the prefill hook's AfterPrefill runs,
  // then the decode hook's (where KV compression belongs).
  virtual void SetAttention(AttentionHook* prefill, AttentionHook* decode) = 0;

  virtual const EngineCounters& counters() const = 0;
  virtual std::string BackendName() const = 0;
};

// Loads the model in `model_dir` (config.json, generation_config.json, safetensors)
// on the backend of `options`. Unimplemented for a backend this build lacks.
absl::StatusOr<std::unique_ptr<Engine>> CreateEngine(const std::string& model_dir,
                                                     const EngineOptions& options);

// The CPU backend: weights converted to float32 at load time, Eigen GEMMs split over
// a thread pool.
absl::StatusOr<std::unique_ptr<Engine>> CreateCpuEngine(const std::string& model_dir,
                                                        const EngineOptions& options);

// The CUDA backend (worker/model/cuda_engine.cc, docs/engine.md): the same float32
// weights on the device, cuBLAS GEMMs, dense attention kernels; hooks run on the host
// with Q and the cache copied to them. Uses CUDA device 0 (set CUDA_VISIBLE_DEVICES to
// pick another). Unimplemented in a build without CUDA; Internal on CUDA errors
// (no device, out of memory).
absl::StatusOr<std::unique_ptr<Engine>> CreateCudaEngine(const std::string& model_dir,
                                                         const EngineOptions& options);

// Index of the largest logit (the first one on ties, as torch.argmax).
TokenId ArgMax(absl::Span<const float> logits);

}  // namespace sf::model

#endif  // SF_WORKER_MODEL_ENGINE_H_
