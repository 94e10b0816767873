// A deterministic evaluator for tests (never linked into sf-worker): each sample's score
// is a function of (job key, index), so a test can check every result that arrives.
// Hooks let unit tests block inside a sample and multi-process tests slow samples down.
#ifndef SF_WORKER_TESTING_TEST_EVALUATOR_H_
#define SF_WORKER_TESTING_TEST_EVALUATOR_H_

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "worker/evaluator.h"

namespace sf::worker::testing {

// The score TestEvaluator gives sample `index` of job `key`: 0 or 1.
double TestScore(const std::string& key, int32_t index);

struct TestEvaluatorOptions {
  std::vector<std::string> methods;  // empty: every catalog method
  std::vector<std::string> backends = {"test"};
  absl::Duration sample_time = absl::ZeroDuration();  // real time spent per sample
  // Called before each sample (e.g. to block until the test lets it go).
  std::function<void(const JobSpec&, int32_t, const CancelFlag&)> before_sample;
  // CanRun refuses jobs whose task has this name (with FailedPrecondition).
  std::string refuse_task;
  // Run fails with Internal at this sample index (-1: never).
  int32_t fail_at = -1;
};

class TestEvaluator : public Evaluator {
 public:
  explicit TestEvaluator(TestEvaluatorOptions options = {});
  std::vector<std::string> Methods() const override;
  std::vector<std::string> Backends() const override;
  absl::Status CanRun(const JobSpec& job) const override;
  absl::StatusOr<EvalSummary> Run(const JobSpec& job,
                                  const absl::flat_hash_set<int32_t>& samples_done,
                                  const SampleSink& sink, const CancelFlag& cancel) override;
  // Samples evaluated so far (over every job), for tests that count work.
  int64_t samples_evaluated() const { return samples_evaluated_.load(); }

 private:
  TestEvaluatorOptions options_;
  std::atomic<int64_t> samples_evaluated_{0};
};

}  // namespace sf::worker::testing

#endif  // SF_WORKER_TESTING_TEST_EVALUATOR_H_
