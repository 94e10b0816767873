#include "worker/evaluator.h"

#include "absl/strings/str_cat.h"
#include "common/method_catalog.h"
#include "worker/no_engine_evaluator.h"

namespace sf::worker {

bool IsPermanentEvalError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
      return true;
    default:
      return false;
  }
}

NoEngineEvaluator::NoEngineEvaluator(std::vector<std::string> backends)
    : backends_(std::move(backends)) {}

std::vector<std::string> NoEngineEvaluator::Methods() const {
  std::vector<std::string> names;
  for (const MethodInfo& m : AllMethods()) names.push_back(m.name);
  return names;
}

std::vector<std::string> NoEngineEvaluator::Backends() const { return backends_; }

absl::Status NoEngineEvaluator::CanRun(const JobSpec& job) const {
  return absl::UnimplementedError(
      absl::StrCat("no evaluator for model '", job.model.name, "' with prefill '", job.prefill.name,
                   "', decode '", job.decode.name, "' and task '", job.task.name,
                   "' yet: this sf-worker build has no model engine, so it refuses the job (it is "
                   "failed, not retried); run it again once a worker with the engine is deployed"));
}

absl::StatusOr<EvalSummary> NoEngineEvaluator::Run(const JobSpec& job,
                                                   const absl::flat_hash_set<int32_t>&,
                                                   const SampleSink&, const CancelFlag&) {
  return CanRun(job);
}

}  // namespace sf::worker
