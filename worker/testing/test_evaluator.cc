#include "worker/testing/test_evaluator.h"

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "methods/registry.h"

namespace sf::worker::testing {

double TestScore(const std::string& key, int32_t index) {
  // FNV-1a, so the score is the same in every process and build.
  uint64_t h = 1469598103934665603ull;
  for (char c : absl::StrCat(key, "#", index)) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  return static_cast<double>((h >> 17) & 1);
}

TestEvaluator::TestEvaluator(TestEvaluatorOptions options) : options_(std::move(options)) {}

std::vector<std::string> TestEvaluator::Methods() const {
  if (!options_.methods.empty()) return options_.methods;
  std::vector<std::string> names;
  for (const MethodInfo& m : AllMethods()) names.push_back(m.name);
  return names;
}

std::vector<std::string> TestEvaluator::Backends() const { return options_.backends; }

absl::Status TestEvaluator::CanRun(const JobSpec& job) const {
  if (!options_.refuse_task.empty() && job.task.name == options_.refuse_task) {
    return absl::FailedPreconditionError(
        absl::StrCat("test evaluator refuses task ", job.task.name));
  }
  return absl::OkStatus();
}

absl::StatusOr<EvalSummary> TestEvaluator::Run(const JobSpec& job,
                                               const absl::flat_hash_set<int32_t>& samples_done,
                                               const SampleSink& sink, const CancelFlag& cancel) {
  for (int32_t i = 0; i < job.task.samples; ++i) {
    if (samples_done.contains(i)) continue;
    if (cancel.cancelled()) return absl::CancelledError("cancelled");
    if (options_.before_sample) options_.before_sample(job, i, cancel);
    if (options_.sample_time > absl::ZeroDuration()) absl::SleepFor(options_.sample_time);
    if (cancel.cancelled()) return absl::CancelledError("cancelled");
    if (i == options_.fail_at) return absl::InternalError(absl::StrCat("test failure at ", i));
    SampleOutcome s;
    s.index = i;
    s.score = TestScore(job.key, i);
    s.prediction = absl::StrCat("p", i);
    s.target = absl::StrCat("t", i);
    s.input_tokens = job.sequence_length;
    s.output_tokens = 4;
    s.measured_density = 1.0;
    s.wall_seconds = 0.001;
    if (absl::Status st = sink(s); !st.ok()) return st;
    ++samples_evaluated_;
  }
  EvalSummary summary;
  summary.metric = "accuracy";
  summary.nominal_compression = job.prefill.compression.value_or(1.0);
  summary.measured_compression = summary.nominal_compression;
  summary.gpu_name = "test";
  return summary;
}

}  // namespace sf::worker::testing
