// sfctl run: the embedded default (in-process coordinator and local workers).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/local_run.h"
#include "common/logging.h"
#include "worker/engine_evaluator.h"
#include "worker/worker_main.h"

namespace sf::cli {
namespace {

// What Ctrl-C prints: written by the signal handler with write(2), so built beforehand.
char interrupt_message[1024];
size_t interrupt_message_size = 0;

void OnInterrupt(int) {
  ssize_t unused = ::write(STDERR_FILENO, interrupt_message, interrupt_message_size);
  (void)unused;
  ::_exit(kExitInterrupted);
}

// On Ctrl-C (or SIGTERM) say that nothing is lost and how to go on, then exit 130. The
// database commits every result and sample as it arrives and the workers' outboxes
// keep what was not yet sent, so exiting at once is safe.
void ExplainInterrupt(const LocalRunOptions& options) {
  const std::string db = options.db_path == kDefaultRunDatabase
                             ? std::string()
                             : absl::StrCat(" --db ", options.db_path);
  const std::string text = absl::StrCat(
      "\nsfctl run: interrupted. Finished jobs and stored samples are kept in ", options.db_path,
      "; run the same command again to resume (sfctl run ", options.submit.spec_path, db, ")\n");
  interrupt_message_size = std::min(text.size(), sizeof(interrupt_message));
  std::memcpy(interrupt_message, text.data(), interrupt_message_size);
  struct sigaction action = {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

}  // namespace

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
  AddSpecOverrideFlag(cmd, &options->submit.overrides);
  AddFormatFlag(cmd, &options->format);
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
  cmd->add_option("--dtype", *dtype, worker::kDTypeFlagHelp)
      ->check(CLI::IsMember({"auto", "float32", "bfloat16"}))
      ->capture_default_str();
  cmd->add_option("--report", options->analysis.out_dir,
                  "analysis report folder (default: <db stem>-report/sweep-<id>)");
  auto verbose = std::make_shared<bool>(false);
  cmd->add_flag("-v,--verbose", *verbose,
                "log every lease and worker step (default: warnings and errors only; "
                "SF_LOG_LEVEL overrides)");
  cmd->callback([&io, exit_code, options, backend, dtype, verbose] {
    if (std::getenv("SF_LOG_LEVEL") == nullptr) {
      SetMinLogLevel(*verbose ? LogLevel::kInfo : LogLevel::kWarning);
    }
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
    ExplainInterrupt(run_options);
    *exit_code = RunLocally(
        run_options,
        [evaluator_options](int) -> std::unique_ptr<worker::Evaluator> {
          return std::make_unique<worker::EngineEvaluator>(*evaluator_options);
        },
        io);
  });
}

}  // namespace sf::cli
