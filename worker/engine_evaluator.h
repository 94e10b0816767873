// The production Evaluator on the CPU model engine: for each sample, generate the task's
// prompt with the model's tokenizer, wrap it in the chat template, prefill and decode
// greedily with the job's attention methods (worker/method_hooks.h), score with the task.
#ifndef SF_WORKER_ENGINE_EVALUATOR_H_
#define SF_WORKER_ENGINE_EVALUATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "tasks/task.h"
#include "worker/evaluator.h"
#include "worker/model/engine.h"
#include "worker/model/tokenizer.h"

namespace sf::worker {

struct EngineEvaluatorOptions {
  // The engine's backend (ChooseBackend picks it for sf-worker); with kCuda, gpu_name is
  // reported in every job's summary.
  model::BackendKind backend = model::BackendKind::kCpu;
  std::string gpu_name;
  // The CUDA engine's element type (the CPU backend computes in float32 only).
  model::ComputeDType dtype = model::ComputeDType::kFloat32;
  int num_threads = 0;  // CPU engine threads (and host-side hooks); 0 = all hardware threads
  // Generated tokens when the job's generation.max_new_tokens is 0.
  int32_t default_max_new_tokens = 64;
  // Tokens reserved for the chat template around the task prompt.
  int64_t template_overhead = 64;
  // CUDA: the bytes each visible GPU can give a model (OptionsForBackendFlag: its free
  // memory less 1 GiB for the CUDA context and libraries). A job that one GPU cannot hold
  // is cut into layer ranges over several (PlaceEngineOnGpus). Empty: device 0 only.
  std::vector<int64_t> device_memory;
};

class EngineEvaluator : public Evaluator {
 public:
  explicit EngineEvaluator(EngineEvaluatorOptions options = {});

  std::vector<std::string> Methods() const override;
  std::vector<std::string> Backends() const override {
    return {options_.backend == model::BackendKind::kCuda ? "cuda" : "cpu"};
  }
  absl::Status CanRun(const JobSpec& job) const override;
  absl::StatusOr<EvalSummary> Run(const JobSpec& job,
                                  const absl::flat_hash_set<int32_t>& samples_done,
                                  const SampleSink& sink, const CancelFlag& cancel) override;

 private:
  struct Loaded {
    std::string model_path;
    int cuda_device = 0;
    std::vector<model::LayerStage> layer_stages;
    std::unique_ptr<model::Engine> engine;
    std::unique_ptr<HfTokenizer> tokenizer;
  };
  // The engine and tokenizer of `model_path` for sequences of `tokens`, loaded once and
  // kept until another model, or another cut of it over the GPUs, is asked for (one model
  // in memory at a time).
  absl::StatusOr<Loaded*> Load(const std::string& model_path, int64_t tokens)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const EngineEvaluatorOptions options_;
  absl::Mutex mu_;  // one job at a time
  std::unique_ptr<Loaded> loaded_ ABSL_GUARDED_BY(mu_);
};

// A task sample and its chat-wrapped prompt tokens, built as EngineEvaluator builds
// every sample: the template's measured overhead (+4 tokens of slack for merges at the
// seams, at most `max_template_overhead`) is budgeted so the prompt lands in
// [0.9 L, L] for L = `sequence_length`.
struct TaskPrompt {
  tasks::Sample sample;
  std::vector<TokenId> tokens;
};
absl::StatusOr<TaskPrompt> BuildTaskPrompt(const HfTokenizer& tokenizer, const tasks::Task& task,
                                           int64_t sequence_length, uint64_t seed, int32_t index,
                                           int64_t max_template_overhead = 64);

// Places a CUDA engine for `config` running sequences of `tokens` on the GPUs, given the
// bytes each can give it (`device_memory`, by device index; the estimate of
// common/gpu_memory.h for options->dtype and prefill chunk): the whole model on one GPU
// (options->cuda_device) when one holds it, else its layers cut over the fewest GPUs
// (options->layer_stages, PlanLayerStages). ResourceExhausted saying what it needs when
// the GPUs together cannot hold it. Leaves *options as it is for the CPU backend or an
// empty device_memory.
absl::Status PlaceEngineOnGpus(const model::ModelConfig& config, int64_t tokens,
                               const std::vector<int64_t>& device_memory,
                               model::EngineOptions* options);

// The backend for `flag` ("auto", "cpu" or "cuda") given the backends this machine offers
// (WorkerMainHooks: "cuda" only with a device and a CUDA build): auto means cuda when
// offered, else cpu. FailedPrecondition for cuda when it is not offered; InvalidArgument
// for another flag.
absl::StatusOr<model::BackendKind> ChooseBackend(absl::string_view flag,
                                                 const std::vector<std::string>& available);

// The engine's element type for `flag` ("auto", "float32" or "bfloat16") on `backend`:
// auto means bfloat16 on cuda and float32 on cpu (the only type the cpu backend has).
// InvalidArgument for bfloat16 on cpu or another flag.
absl::StatusOr<model::ComputeDType> ChooseDType(absl::string_view flag, model::BackendKind backend);

// The help text of the `--dtype` flag, shared by sf-worker and `sfctl run`.
inline constexpr char kDTypeFlagHelp[] =
    "model engine element type: auto (bfloat16 on cuda, float32 on cpu), float32 or "
    "bfloat16 (cuda only)";

// Evaluator options for the `--backend` and `--dtype` flags on this machine: lists the
// CUDA devices (none in a build without CUDA), applies ChooseBackend and ChooseDType, and
// names the first GPU when the choice is cuda. The one place sf-worker and `sfctl run`
// pick their backend.
absl::StatusOr<EngineEvaluatorOptions> OptionsForBackendFlag(absl::string_view flag,
                                                             absl::string_view dtype_flag = "auto");

}  // namespace sf::worker

#endif  // SF_WORKER_ENGINE_EVALUATOR_H_
