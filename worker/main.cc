// sf-worker: leases jobs from the coordinator and evaluates them on this machine with the
// model engine and the attention methods. The engine runs on the GPU when this machine has
// one and the build has CUDA, else on the CPU (--backend). SIGTERM/SIGINT stop it cleanly
// (see --on-term).
#include <cstdlib>
#include <iostream>
#include <memory>

#include "common/crash_trace.h"
#include "worker/engine_evaluator.h"
#include "worker/worker_main.h"

int main(int argc, char** argv) {
  sf::InstallCrashTrace(argv[0]);
  auto backend_flag = std::make_shared<std::string>("auto");
  auto dtype_flag = std::make_shared<std::string>("auto");
  sf::worker::WorkerMainHooks hooks;
  hooks.add_flags = [backend_flag, dtype_flag](CLI::App& app) {
    app.add_option("--backend", *backend_flag,
                   "model engine backend: auto (cuda when this machine has a GPU and the build "
                   "has CUDA, else cpu), cpu or cuda")
        ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
        ->capture_default_str();
    app.add_option("--dtype", *dtype_flag, sf::worker::kDTypeFlagHelp)
        ->check(CLI::IsMember({"auto", "float32", "bfloat16"}))
        ->capture_default_str();
  };
  hooks.make_evaluator = [backend_flag, dtype_flag](const std::vector<std::string>&) {
    absl::StatusOr<sf::worker::EngineEvaluatorOptions> options =
        sf::worker::OptionsForBackendFlag(*backend_flag, *dtype_flag);
    if (!options.ok()) {
      std::cerr << "sf-worker: " << options.status().message() << "\n";
      std::exit(2);
    }
    std::cerr << "sf-worker: model engine backend "
              << (options->backend == sf::model::BackendKind::kCuda
                      ? "cuda (" + options->gpu_name + ")"
                      : std::string("cpu"))
              << ", " << sf::model::ComputeDTypeName(options->dtype) << "\n";
    return std::make_unique<sf::worker::EngineEvaluator>(*options);
  };
  return sf::worker::WorkerMain(argc, argv, hooks);
}
