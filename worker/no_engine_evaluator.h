// The evaluator of a worker built without a model engine (the engine comes with another
// issue): it advertises the catalog's methods so that jobs reach it, and refuses each one
// with a clear, permanent error instead of leaving the sweep queued forever.
#ifndef SF_WORKER_NO_ENGINE_EVALUATOR_H_
#define SF_WORKER_NO_ENGINE_EVALUATOR_H_

#include <string>
#include <vector>

#include "worker/evaluator.h"

namespace sf::worker {

class NoEngineEvaluator : public Evaluator {
 public:
  explicit NoEngineEvaluator(std::vector<std::string> backends);

  std::vector<std::string> Methods() const override;
  std::vector<std::string> Backends() const override;
  // Always Unimplemented ("no evaluator for ... yet").
  absl::Status CanRun(const JobSpec& job) const override;
  absl::StatusOr<EvalSummary> Run(const JobSpec& job,
                                  const absl::flat_hash_set<int32_t>& samples_done,
                                  const SampleSink& sink, const CancelFlag& cancel) override;

 private:
  std::vector<std::string> backends_;
};

}  // namespace sf::worker

#endif  // SF_WORKER_NO_ENGINE_EVALUATOR_H_
