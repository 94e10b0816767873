// sf-test-worker: sf-worker with the deterministic TestEvaluator, for multi-process
// fault tests (never installed).
#include "worker/testing/test_evaluator.h"
#include "worker/worker_main.h"

int main(int argc, char** argv) {
  double sample_ms = 0;
  sf::worker::WorkerMainHooks hooks;
  hooks.description = "sf-test-worker: sf-worker with the tests' deterministic evaluator";
  hooks.add_flags = [&sample_ms](CLI::App& app) {
    app.add_option("--sample-ms", sample_ms, "real time each sample takes");
  };
  hooks.make_evaluator = [&sample_ms](const std::vector<std::string>&) {
    sf::worker::testing::TestEvaluatorOptions options;
    options.sample_time = absl::Milliseconds(sample_ms);
    return std::make_unique<sf::worker::testing::TestEvaluator>(options);
  };
  return sf::worker::WorkerMain(argc, argv, hooks);
}
