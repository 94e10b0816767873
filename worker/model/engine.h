// The model engine's backend-independent interface: an Engine holds one model's
// weights and one sequence's KV cache; Prefill runs a prompt, Decode one token.
// Backends (CPU, CUDA) implement it; CreateEngine picks one by name.
#ifndef SF_WORKER_MODEL_ENGINE_H_
#define SF_WORKER_MODEL_ENGINE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/gpu_memory.h"
#include "common/model_config.h"
#include "common/tokenizer.h"
#include "worker/model/attention.h"
#include "worker/model/kv_cache.h"

namespace sf::model {

enum class BackendKind { kCpu, kCuda };
absl::StatusOr<BackendKind> ParseBackendKind(absl::string_view name);  // "cpu", "cuda"

// What the engine computes in. The CPU backend computes in float32 only; the CUDA backend
// in either (float32 for conformance with the CPU engine, bfloat16 for real models).
enum class ComputeDType { kFloat32, kBfloat16 };
absl::StatusOr<ComputeDType> ParseComputeDType(absl::string_view name);  // "float32", "bfloat16"
const char* ComputeDTypeName(ComputeDType dtype);

struct EngineOptions {
  BackendKind backend = BackendKind::kCpu;
  int num_threads = 0;  // CPU: 0 means all hardware threads
  int page_size = 16;   // Quest page size of the KV cache
  // Rows reserved per KV head up front (0: grow as needed).
  int64_t reserve_tokens = 0;
  // When set, replaces the model's RoPE scaling (e.g. StudyYarnScaling).
  std::optional<RopeScaling> rope_override;
  // CUDA: element type of weights, activations and the KV cache (accumulation and the
  // residual stream are float32 in both).
  ComputeDType dtype = ComputeDType::kFloat32;
  // CUDA: prompts longer than this run through the layers in chunks of this many tokens,
  // so activation memory stays bounded (0: the backend's default, 8192 in bfloat16 and
  // no chunking in float32). Only when both attention hooks are exactly dense: a sparse
  // prefill method sees the whole prompt in one call.
  int64_t prefill_chunk_tokens = 0;
  // CUDA bfloat16: replay each decode step as a CUDA graph when the decode hook is exactly
  // dense (captured again when the cache grows).
  bool cuda_graphs = true;
  // CUDA bfloat16, tests only: called inside each decode-graph capture after the step is
  // recorded, to break the capture as code outside the engine can (a step whose capture
  // fails runs with plain launches).
  std::function<void()> during_decode_capture;
  // CUDA bfloat16: run exactly dense attention on the CUDA-core reference kernels instead
  // of the Hopper ones (sm_90, head_dim 64/128/256), for comparisons.
  bool reference_attention = false;
  // CUDA: the device the engine runs on, an index among the visible devices (ignored when
  // layer_stages is set).
  int cuda_device = 0;
  // CUDA: a layer pipeline. Each stage holds the weights and KV cache of layers
  // [first_layer, end_layer) on its device; the residual stream of each token moves from
  // stage to stage (peer copies between devices where the GPUs allow it, through the host
  // otherwise). Stages must cover the layers in order, each at least one layer; several
  // may share a device. Empty: every layer on cuda_device. PlanLayerStages
  // (common/gpu_memory.h) cuts a model over a worker's GPUs by memory.
  std::vector<LayerStage> layer_stages;
};

// The settings of `options` that size its GPU memory (common/gpu_memory.h): element
// bytes of its dtype and its prefill chunk (the bfloat16 default, 8192, when unset).
GpuMemorySettings GpuMemorySettingsFor(const EngineOptions& options);
// The estimate (common/gpu_memory.h) for `config` on the CUDA backend with `options` for a
// sequence of `tokens` (prompt plus generated), every layer on one GPU. The engine checks
// it against the device's free memory when it loads (with options.reserve_tokens) and when
// a sequence grows the cache; a layer pipeline checks each stage's part on its GPU.
GpuMemoryEstimate EstimateGpuMemory(const ModelConfig& config, const EngineOptions& options,
                                    int64_t tokens);

// Where time went, for benchmarks and job records.
struct EngineCounters {
  int64_t tokens_prefilled = 0;
  int64_t tokens_decoded = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
  AttentionStats prefill_attention;
  AttentionStats decode_attention;
  // Where each phase's attention ran last (kNone until the phase runs).
  AttentionBackend prefill_backend = AttentionBackend::kNone;
  AttentionBackend decode_backend = AttentionBackend::kNone;
  // The kernels exactly dense attention runs on: "cpu", "cuda-reference" (CUDA cores) or
  // the Hopper kernels' version (kernels/cuda/attention/prefill.h, kHopperKernelsVersion).
  std::string attention_kernels;
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

// The CPU backend: weights converted to float32 at load time, OpenBLAS GEMMs split over
// a thread pool.
absl::StatusOr<std::unique_ptr<Engine>> CreateCpuEngine(const std::string& model_dir,
                                                        const EngineOptions& options);

// The CUDA backend (worker/model/cuda_engine.cc, docs/engine.md): weights read from the
// checkpoint straight onto the device in options.dtype (float32 or bfloat16; other
// checkpoint float types are converted on the device), cuBLAS GEMMs (cuBLASLt bf16 with
// float32 accumulation), dense attention kernels on the device; a hook with a CUDA
// implementation runs on the device, any other on the host with Q and the cache copied
// to it. Runs on options.cuda_device, or as a layer pipeline over options.layer_stages
// (worker/model/cuda_pipeline.h). Unimplemented in a build without CUDA; InvalidArgument
// for a device that is not visible or stages that do not cover the layers in order;
// ResourceExhausted when the job's GpuMemoryEstimate (a stage's part of it) exceeds the
// device's free memory; Internal on other CUDA errors.
absl::StatusOr<std::unique_ptr<Engine>> CreateCudaEngine(const std::string& model_dir,
                                                         const EngineOptions& options);

// A CUDA engine for `config` whose weights are drawn on the device instead of read from a
// checkpoint, for benchmarks and long-context checks at model sizes whose checkpoints are
// too large to write: linear and embedding weights N(0, init_std), norms 1 + N(0, 0.1),
// biases N(0, init_std), every value rounded to bf16 (so float32 and bfloat16 engines
// with the same seed hold the same weights). Errors as CreateCudaEngine.
absl::StatusOr<std::unique_ptr<Engine>> CreateCudaEngineWithRandomWeights(
    const ModelConfig& config, const EngineOptions& options, uint64_t seed, float init_std);

// Index of the largest logit (the first one on ties, as torch.argmax).
TokenId ArgMax(absl::Span<const float> logits);

}  // namespace sf::model

#endif  // SF_WORKER_MODEL_ENGINE_H_
