// sfctl run: the embedded default (in-process coordinator and local workers).
#include "cli/command.h"
#include "cli/local_run.h"
#include "worker/engine_evaluator.h"
#include "worker/worker_main.h"

namespace sf::cli {

void AddRunCommand(CLI::App& app, Io& io, int* exit_code) {
  auto options = std::make_shared<LocalRunOptions>();
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Run a sweep on this machine with no setup: starts a coordinator in process (its "
      "database in the working folder, so running again resumes and reuses finished jobs) "
      "and local workers, shows progress until the sweep finishes, then prints the results "
      "table and the analysis (summary + HTML report; see sfctl analyze). Exit 0 when every job is "
      "done, 1 when some failed");
  cmd->add_option("spec", options->submit.spec_path, "sweep spec (YAML)")->required();
  cmd->add_option("--db", options->db_path, "coordinator database file")->capture_default_str();
  cmd->add_option("--workers", options->workers, "local workers")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_flag("--force", options->submit.force, "re-run jobs that already have results");
  cmd->add_option("--format", options->format, "results table format: table, csv or json")
      ->capture_default_str();
  cmd->add_flag(
      "--no-analyze", [options](int64_t) { options->analyze = false; },
      "skip the analysis after the results table");
  cmd->add_flag(
      "--no-plots", [options](int64_t) { options->analysis.plots = false; },
      "analysis without figures (no gnuplot needed)");
  auto backend = std::make_shared<std::string>("auto");
  cmd->add_option("--backend", *backend,
                  "model engine backend of the local workers: auto (cuda when this machine "
                  "has a GPU and the build has CUDA, else cpu), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  auto dtype = std::make_shared<std::string>("auto");
  cmd->add_option("--dtype", *dtype,
                  "model engine element type: auto (float32), float32 or bfloat16 (cuda only; "
                  "not yet run on a GPU)")
      ->check(CLI::IsMember({"auto", "float32", "bfloat16"}))
      ->capture_default_str();
  cmd->add_option("--report", options->analysis.out_dir,
                  "analysis report folder (default: <db stem>-report/sweep-<id>)");
  cmd->callback([&io, exit_code, options, backend, dtype] {
    absl::StatusOr<worker::EngineEvaluatorOptions> evaluator_options =
        worker::OptionsForBackendFlag(*backend, *dtype);
    if (!evaluator_options.ok()) {
      *exit_code = ReportStatus(evaluator_options.status(), io);
      return;
    }
    LocalRunOptions run_options = *options;
    if (evaluator_options->backend == model::BackendKind::kCuda) {
      absl::StatusOr<std::vector<v1::Device>> devices = worker::LocalDevices();
      if (devices.ok()) run_options.devices = *devices;
    }
    io.err << "sfctl run: model engine backend "
           << (evaluator_options->backend == model::BackendKind::kCuda
                   ? "cuda (" + evaluator_options->gpu_name + ")"
                   : std::string("cpu"))
           << ", " << model::ComputeDTypeName(evaluator_options->dtype) << "\n";
    *exit_code = RunLocally(
        run_options,
        [evaluator_options](int) -> std::unique_ptr<worker::Evaluator> {
          return std::make_unique<worker::EngineEvaluator>(*evaluator_options);
        },
        io);
  });
}

}  // namespace sf::cli
