// The seam between the worker loop and whatever evaluates a job: given a job and the
// samples already stored, evaluate the rest one by one, handing each finished sample to a
// sink, and stop early when cancelled. The production evaluator (model engine + attention
// method + task) plugs in here; tests plug in their own.
#ifndef SF_WORKER_EVALUATOR_H_
#define SF_WORKER_EVALUATOR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/job.h"
#include "common/model_config.h"

namespace sf::worker {

// One evaluated sample (mirrors sf.v1.SampleResult).
struct SampleOutcome {
  int32_t index = 0;
  double score = 0;
  std::string prediction;
  std::string target;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double measured_density = 1.0;  // fraction of attention entries computed
  double wall_seconds = 0;
};

// What the evaluator knows about the job as a whole once its samples are done; the
// worker adds the per-sample statistics (mean, variance, n) itself.
struct EvalSummary {
  std::string metric = "accuracy";
  double nominal_compression = 1.0;
  double measured_compression = 1.0;
  double flops_prefill = 0;
  double flops_decode = 0;
  double flops_indexing = 0;
  double tokens_per_second = 0;
  std::string gpu_name;
  // The config of the model the job ran, recorded with the result (sf.v1.ModelShape) so
  // that the analysis needs no model files; unset: not known to this evaluator.
  std::optional<model::ModelConfig> model;
  // The engine's element type and where each phase's attention ran (JobResult's
  // compute_dtype, prefill_attention, decode_attention); empty: not known.
  std::string compute_dtype;
  std::string prefill_attention;
  std::string decode_attention;
  // Seconds per phase over the samples this attempt evaluated, the methods' estimation
  // share, and the dense attention kernels (JobResult fields of the same names); 0 / empty:
  // not known.
  double prefill_seconds = 0;
  double decode_seconds = 0;
  double estimation_seconds = 0;
  std::string attention_kernels;
};

// Set by the worker when the job must stop (lease lost, sweep cancelled, SIGTERM);
// an evaluator checks it between samples (and inside long samples when it can).
class CancelFlag {
 public:
  void Cancel() { cancelled_.store(true, std::memory_order_release); }
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> cancelled_{false};
};

// Receives each finished sample. A non-OK status (the outbox could not store it) tells
// the evaluator to stop and return that status.
using SampleSink = std::function<absl::Status(const SampleOutcome&)>;

class Evaluator {
 public:
  virtual ~Evaluator() = default;

  // Attention methods (methods/registry.h names) and backends ("cpu", "cuda", ...)
  // this evaluator offers; the worker registers them as its capabilities.
  virtual std::vector<std::string> Methods() const = 0;
  virtual std::vector<std::string> Backends() const = 0;

  // OK when `job` can run here. Otherwise the error says why, and its code says whether
  // another attempt could succeed: FailedPrecondition/Unimplemented/InvalidArgument are
  // permanent (the worker fails the job for good), others are retried elsewhere.
  virtual absl::Status CanRun(const JobSpec& job) const = 0;

  // Evaluates every sample index in [0, job.task.samples) not in `samples_done`, in
  // increasing order, calling `sink` once per finished sample. Returns the summary when
  // all are done; Cancelled when `cancel` was set before the end; the sink's error when
  // it failed; another error when evaluation itself failed (the code says whether it is
  // permanent, as for CanRun).
  virtual absl::StatusOr<EvalSummary> Run(const JobSpec& job,
                                          const absl::flat_hash_set<int32_t>& samples_done,
                                          const SampleSink& sink, const CancelFlag& cancel) = 0;
};

// True when an evaluation error cannot go away by retrying on another worker.
bool IsPermanentEvalError(const absl::Status& status);

}  // namespace sf::worker

#endif  // SF_WORKER_EVALUATOR_H_
