// sf-worker: leases jobs from the coordinator and evaluates them on this machine with the
// model engine (CPU backend) and the attention methods. SIGTERM/SIGINT stop it cleanly
// (see --on-term).
#include "worker/engine_evaluator.h"
#include "worker/worker_main.h"

int main(int argc, char** argv) {
  sf::worker::WorkerMainHooks hooks;
  hooks.make_evaluator = [](const std::vector<std::string>& /*backends*/) {
    return std::make_unique<sf::worker::EngineEvaluator>();
  };
  return sf::worker::WorkerMain(argc, argv, hooks);
}
