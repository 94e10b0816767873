// sfctl dump-qkv: one layer's Q/K/V from a real model run on a task prompt, written in
// the fidelity dump format, so `sfctl fidelity --dump` measures the methods on real
// attention instead of the structured generator.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "common/status.h"
#include "kernels/cpu/fidelity.h"
#include "tasks/task.h"
#include "worker/engine_evaluator.h"
#include "worker/model/engine.h"
#include "worker/model/tokenizer.h"
#include "worker/qkv_capture.h"

namespace sf::cli {
namespace {

struct DumpQkvOptions {
  std::string model_dir;
  std::string out;
  int layer = -1;
  int64_t length = 4096;
  std::string task = "ruler_niah";
  int32_t sample = 0;
  uint64_t seed = 1;
  std::string backend = "cpu";
  int threads = 0;
};

absl::Status DumpQkv(const DumpQkvOptions& o, Io& io) {
  SF_ASSIGN_OR_RETURN(worker::EngineEvaluatorOptions backend,
                      worker::OptionsForBackendFlag(o.backend));
  model::EngineOptions engine_options;
  engine_options.backend = backend.backend;
  engine_options.num_threads = o.threads;
  SF_ASSIGN_OR_RETURN(std::unique_ptr<model::Engine> engine,
                      model::CreateEngine(o.model_dir, engine_options));
  const int layers = static_cast<int>(engine->config().num_layers);
  const int layer = o.layer >= 0 ? o.layer : layers / 2;
  if (layer >= layers) {
    return absl::InvalidArgumentError(absl::StrCat("--layer ", layer, ": ", o.model_dir, " has ",
                                                   layers, " layers (0 to ", layers - 1, ")"));
  }
  SF_ASSIGN_OR_RETURN(std::unique_ptr<HfTokenizer> tokenizer,
                      HfTokenizer::FromModelDir(o.model_dir));
  SF_ASSIGN_OR_RETURN(std::unique_ptr<tasks::Task> task, tasks::CreateTask(o.task, {}));
  SF_ASSIGN_OR_RETURN(worker::TaskPrompt prompt,
                      worker::BuildTaskPrompt(*tokenizer, *task, o.length, o.seed, o.sample));
  io.err << "prefilling " << prompt.tokens.size() << " tokens of " << o.task << " sample "
         << o.sample << " on " << engine->BackendName() << "...\n";
  SF_ASSIGN_OR_RETURN(kernels::LayerQkv qkv,
                      worker::CaptureLayerQkv(*engine, prompt.tokens, layer));
  SF_RETURN_IF_ERROR(kernels::WriteQkvDump(o.out, qkv));
  io.out << "wrote " << o.out << ": layer " << layer << " of " << layers << ", Hq=" << qkv.q.heads
         << " Hkv=" << qkv.k.heads << " L=" << qkv.q.len << " D=" << qkv.q.dim << " (task "
         << o.task << ", sample " << o.sample << ", seed " << o.seed << ")\n"
         << "next: sfctl fidelity --dump " << o.out << "\n";
  return absl::OkStatus();
}

}  // namespace

void AddDumpQkvCommand(CLI::App& app, Io& io, int* exit_code) {
  auto o = std::make_shared<DumpQkvOptions>();
  CLI::App* cmd = app.add_subcommand(
      "dump-qkv",
      "Run a model's prefill on a task prompt and write one layer's Q/K/V (after RoPE) as a "
      "fidelity dump, for `sfctl fidelity --dump` on real attention");
  cmd->add_option("--model", o->model_dir, "Hugging Face model folder")->required();
  cmd->add_option("--out", o->out, "dump file to write (format SFQKV001, docs/methods.md)")
      ->required();
  cmd->add_option("--layer", o->layer, "layer to capture (default: the middle one)");
  cmd->add_option("--length", o->length, "prompt length in tokens (the prompt lands in [0.9 L, L])")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{64}, int64_t{1} << 22));
  cmd->add_option("--task", o->task, "task whose prompt is run (sfctl tasks list)")
      ->capture_default_str();
  cmd->add_option("--sample", o->sample, "sample index of the task")->capture_default_str();
  cmd->add_option("--seed", o->seed, "task seed")->capture_default_str();
  cmd->add_option("--backend", o->backend, "model engine backend: auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU engine threads, 0 = every core")
      ->capture_default_str();
  cmd->callback([o, &io, exit_code] { *exit_code = ReportStatus(DumpQkv(*o, io), io); });
}

}  // namespace sf::cli
