#include "worker/engine_evaluator.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/gpu_memory.h"
#include "common/model_cost.h"
#include "common/status.h"
#include "kernels/device.h"
#include "methods/registry.h"
#include "tasks/task.h"
#include "worker/method_hooks.h"
#include "worker/model/chat_template.h"
#include "worker/model/generate.h"

namespace sf::worker {
namespace {

namespace fs = std::filesystem;

double Seconds(std::chrono::steady_clock::time_point from) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count();
}

// Nominal compression of a method choice: what the spec asked for, else the closed form of
// its parameters, else 1 (threshold methods have none).
double Nominal(const MethodChoice& method, int64_t seq_len, Phase phase) {
  if (method.compression) return *method.compression;
  absl::StatusOr<double> c = NominalCompression(method.name, method.params, seq_len, phase);
  return c.ok() ? *c : 1.0;
}

}  // namespace

EngineEvaluator::EngineEvaluator(EngineEvaluatorOptions options) : options_(options) {}

std::vector<std::string> EngineEvaluator::Methods() const {
  std::vector<std::string> names = WiredPrefillMethods();
  for (const std::string& name : WiredDecodeMethods()) {
    bool present = false;
    for (const std::string& n : names) present = present || n == name;
    if (!present) names.push_back(name);
  }
  return names;
}

absl::Status EngineEvaluator::CanRun(const JobSpec& job) const {
  if (job.sequence_length <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("job sequence_length must be positive, got ", job.sequence_length));
  }
  SF_ASSIGN_OR_RETURN(auto prefill, MakePrefillHook(job.prefill));
  SF_ASSIGN_OR_RETURN(auto decode, MakeDecodeHook(job.decode));
  absl::StatusOr<const tasks::TaskInfo*> task = tasks::FindTask(job.task.name);
  if (!task.ok()) return absl::InvalidArgumentError(task.status().message());
  std::error_code ec;
  if (!fs::is_directory(job.model.path, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model folder '", job.model.path, "' of model '", job.model.name,
        "' does not exist on this worker; copy the model there or fix the spec's path"));
  }
  for (const char* file : {"config.json", "tokenizer.json"}) {
    if (!fs::exists(fs::path(job.model.path) / file, ec)) {
      return absl::FailedPreconditionError(
          absl::StrCat("model folder '", job.model.path, "' has no ", file));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<EngineEvaluator::Loaded*> EngineEvaluator::Load(const std::string& model_path,
                                                               int64_t tokens) {
  model::EngineOptions engine_options;
  engine_options.num_threads = options_.num_threads;
  engine_options.backend = options_.backend;
  engine_options.dtype = options_.dtype;
  if (options_.backend == model::BackendKind::kCuda && !options_.device_memory.empty()) {
    SF_ASSIGN_OR_RETURN(model::ModelConfig config, model::LoadModelConfig(model_path));
    SF_RETURN_IF_ERROR(PlaceEngineOnGpus(config, tokens, options_.device_memory, &engine_options));
  }
  auto same_stages = [&](const Loaded& l) {
    if (l.cuda_device != engine_options.cuda_device ||
        l.layer_stages.size() != engine_options.layer_stages.size()) {
      return false;
    }
    for (size_t i = 0; i < l.layer_stages.size(); ++i) {
      const model::LayerStage &a = l.layer_stages[i], &b = engine_options.layer_stages[i];
      if (a.device != b.device || a.first_layer != b.first_layer || a.end_layer != b.end_layer) {
        return false;
      }
    }
    return true;
  };
  if (loaded_ != nullptr && loaded_->model_path == model_path && same_stages(*loaded_)) {
    return loaded_.get();
  }
  loaded_.reset();  // free the old model before loading the next
  auto loaded = std::make_unique<Loaded>();
  loaded->model_path = model_path;
  loaded->cuda_device = engine_options.cuda_device;
  loaded->layer_stages = engine_options.layer_stages;
  SF_ASSIGN_OR_RETURN(loaded->engine, model::CreateEngine(model_path, engine_options));
  SF_ASSIGN_OR_RETURN(loaded->tokenizer, HfTokenizer::FromModelDir(model_path));
  loaded_ = std::move(loaded);
  return loaded_.get();
}

absl::StatusOr<EvalSummary> EngineEvaluator::Run(const JobSpec& job,
                                                 const absl::flat_hash_set<int32_t>& samples_done,
                                                 const SampleSink& sink, const CancelFlag& cancel) {
  SF_RETURN_IF_ERROR(CanRun(job));
  absl::MutexLock lock(&mu_);
  const int32_t max_new_tokens = job.generation.max_new_tokens > 0
                                     ? job.generation.max_new_tokens
                                     : options_.default_max_new_tokens;
  SF_ASSIGN_OR_RETURN(Loaded * loaded, Load(job.model.path, job.sequence_length + max_new_tokens));
  model::Engine& engine = *loaded->engine;
  const HfTokenizer& tokenizer = *loaded->tokenizer;
  SF_ASSIGN_OR_RETURN(std::unique_ptr<tasks::Task> task,
                      tasks::CreateTask(job.task.name, job.task.params));
  SF_ASSIGN_OR_RETURN(auto prefill_hook, MakePrefillHook(job.prefill));
  SF_ASSIGN_OR_RETURN(auto decode_hook, MakeDecodeHook(job.decode));
  engine.SetAttention(prefill_hook.get(), decode_hook.get());
  // The hooks die with this call; the cached engine must not keep pointers to them.
  absl::Cleanup restore_dense = [&engine] { engine.SetAttention(nullptr, nullptr); };

  model::GenerationOptions generation;
  generation.max_new_tokens = max_new_tokens;

  EvalSummary summary;
  summary.model = engine.config();
  {
    absl::StatusOr<const tasks::TaskInfo*> info = tasks::FindTask(job.task.name);
    if (info.ok()) summary.metric = (*info)->metric;
  }
  summary.nominal_compression = Nominal(job.prefill, job.sequence_length, Phase::kPrefill) *
                                Nominal(job.decode, job.sequence_length, Phase::kDecode);
  model::AttentionStats prefill_total, decode_total;
  double input_tokens_total = 0, output_tokens_total = 0;
  int64_t tokens_total = 0;
  double seconds_total = 0;

  for (int32_t index = 0; index < job.task.samples; ++index) {
    if (samples_done.contains(index)) continue;
    if (cancel.cancelled()) {
      return absl::CancelledError(
          absl::StrCat("job ", job.key, " cancelled before sample ", index));
    }
    const auto start = std::chrono::steady_clock::now();
    SF_ASSIGN_OR_RETURN(TaskPrompt built,
                        BuildTaskPrompt(tokenizer, *task, job.sequence_length, job.seed, index,
                                        options_.template_overhead));
    const tasks::Sample& sample = built.sample;
    const std::vector<TokenId>& prompt = built.tokens;
    const model::EngineCounters before = engine.counters();
    absl::StatusOr<model::GenerationResult> generated =
        model::GenerateGreedy(engine, prompt, generation);
    if (!generated.ok()) {
      return Annotate(generated.status(), absl::StrCat("sample ", index, " of job ", job.key));
    }
    const model::EngineCounters& after = engine.counters();
    model::AttentionStats prefill{
        after.prefill_attention.pairs_computed - before.prefill_attention.pairs_computed,
        after.prefill_attention.pairs_dense - before.prefill_attention.pairs_dense};
    model::AttentionStats decode{
        after.decode_attention.pairs_computed - before.decode_attention.pairs_computed,
        after.decode_attention.pairs_dense - before.decode_attention.pairs_dense};
    SF_ASSIGN_OR_RETURN(std::string prediction,
                        tokenizer.Decode(generated->tokens, /*skip_special=*/true));
    const tasks::ScoreResult score = task->Score(sample, prediction);

    SampleOutcome outcome;
    outcome.index = index;
    outcome.score = score.score;
    outcome.prediction = std::move(prediction);
    outcome.target = sample.gold;
    outcome.input_tokens = static_cast<int64_t>(prompt.size());
    outcome.output_tokens = static_cast<int64_t>(generated->tokens.size());
    const double computed = prefill.pairs_computed + decode.pairs_computed;
    const double dense = prefill.pairs_dense + decode.pairs_dense;
    outcome.measured_density = dense > 0 ? computed / dense : 1.0;
    outcome.wall_seconds = Seconds(start);

    prefill_total.pairs_computed += prefill.pairs_computed;
    prefill_total.pairs_dense += prefill.pairs_dense;
    decode_total.pairs_computed += decode.pairs_computed;
    decode_total.pairs_dense += decode.pairs_dense;
    input_tokens_total += static_cast<double>(outcome.input_tokens);
    output_tokens_total += static_cast<double>(outcome.output_tokens);
    tokens_total += outcome.input_tokens + outcome.output_tokens;
    seconds_total += generated->prefill_seconds + generated->decode_seconds;
    summary.prefill_seconds += generated->prefill_seconds;
    summary.decode_seconds += generated->decode_seconds;
    SF_RETURN_IF_ERROR(sink(outcome));
  }
  // The cost model over what ran: the tokens and the attention pairs the methods computed.
  const model::FlopsBreakdown flops =
      model::CostModel(engine.config())
          .Measured(input_tokens_total, output_tokens_total, prefill_total.pairs_computed,
                    decode_total.pairs_computed,
                    prefill_hook->estimation_flops() + decode_hook->estimation_flops());
  summary.flops_prefill = flops.Prefill();
  summary.flops_decode = flops.Decode();
  summary.flops_indexing = flops.indexing;
  const double computed = prefill_total.pairs_computed + decode_total.pairs_computed;
  const double dense = prefill_total.pairs_dense + decode_total.pairs_dense;
  summary.measured_compression = computed > 0 ? dense / computed : 1.0;
  summary.tokens_per_second = seconds_total > 0 ? tokens_total / seconds_total : 0;
  if (options_.backend == model::BackendKind::kCuda) summary.gpu_name = options_.gpu_name;
  summary.compute_dtype = model::ComputeDTypeName(options_.dtype);
  summary.prefill_attention = model::AttentionBackendName(engine.counters().prefill_backend);
  summary.decode_attention = model::AttentionBackendName(engine.counters().decode_backend);
  summary.attention_kernels = engine.counters().attention_kernels;
  summary.estimation_seconds =
      prefill_hook->estimation_seconds() + decode_hook->estimation_seconds();
  return summary;
}

absl::StatusOr<model::BackendKind> ChooseBackend(absl::string_view flag,
                                                 const std::vector<std::string>& available) {
  const bool has_cuda = absl::c_linear_search(available, "cuda");
  if (flag == "auto") return has_cuda ? model::BackendKind::kCuda : model::BackendKind::kCpu;
  if (flag == "cuda" && !has_cuda) {
    return absl::FailedPreconditionError(
        "--backend cuda, but this machine offers no CUDA device (or this build has no CUDA); "
        "use --backend cpu or auto");
  }
  if (flag == "cpu" || flag == "cuda") return model::ParseBackendKind(flag);
  return absl::InvalidArgumentError(
      absl::StrCat("--backend '", flag, "' is not known; use auto, cpu or cuda"));
}

absl::StatusOr<TaskPrompt> BuildTaskPrompt(const HfTokenizer& tokenizer, const tasks::Task& task,
                                           int64_t sequence_length, uint64_t seed, int32_t index,
                                           int64_t max_template_overhead) {
  const ChatFormat format = DetectChatFormat(tokenizer);
  // The template's real cost for this tokenizer, plus slack for merges at the seams.
  SF_ASSIGN_OR_RETURN(std::vector<TokenId> empty_chat,
                      EncodeChat(format, tokenizer, {{"user", ""}}));
  tasks::PromptBudget budget;
  budget.target_length = sequence_length;
  budget.template_overhead =
      std::min<int64_t>(max_template_overhead, static_cast<int64_t>(empty_chat.size()) + 4);
  TaskPrompt out;
  SF_ASSIGN_OR_RETURN(out.sample, task.Generate(tokenizer, budget, seed, index));
  SF_ASSIGN_OR_RETURN(out.tokens, EncodeChat(format, tokenizer, {{"user", out.sample.prompt}}));
  return out;
}

absl::Status PlaceEngineOnGpus(const model::ModelConfig& config, int64_t tokens,
                               const std::vector<int64_t>& device_memory,
                               model::EngineOptions* options) {
  if (options->backend != model::BackendKind::kCuda || device_memory.empty()) {
    return absl::OkStatus();
  }
  const model::LayerMemoryProfile profile =
      model::ProfileGpuMemory(config, model::GpuMemorySettingsFor(*options), tokens);
  absl::StatusOr<std::vector<model::LayerStage>> stages =
      model::PlanLayerStages(profile, device_memory);
  if (!stages.ok()) {
    return Annotate(stages.status(),
                    absl::StrCat("placing a ", config.num_layers, "-layer model for ", tokens,
                                 " tokens in ", model::ComputeDTypeName(options->dtype)));
  }
  options->layer_stages.clear();
  if (stages->size() == 1) {
    options->cuda_device = stages->front().device;
  } else {
    options->layer_stages = *std::move(stages);
  }
  return absl::OkStatus();
}

absl::StatusOr<model::ComputeDType> ChooseDType(absl::string_view flag,
                                                model::BackendKind backend) {
  // auto is bfloat16 on cuda (its logits are as close to transformers' float32 as
  // transformers' own bf16: hf_bf16_check.py, docs/gpu.md) and float32 on cpu.
  if (flag == "auto") {
    return backend == model::BackendKind::kCuda ? model::ComputeDType::kBfloat16
                                                : model::ComputeDType::kFloat32;
  }
  SF_ASSIGN_OR_RETURN(model::ComputeDType dtype, model::ParseComputeDType(flag));
  if (dtype == model::ComputeDType::kBfloat16 && backend != model::BackendKind::kCuda) {
    return absl::InvalidArgumentError(
        "--dtype bfloat16 needs the cuda backend (the cpu backend computes in float32)");
  }
  return dtype;
}

absl::StatusOr<EngineEvaluatorOptions> OptionsForBackendFlag(absl::string_view flag,
                                                             absl::string_view dtype_flag) {
  std::vector<std::string> available = {"cpu"};
  absl::StatusOr<std::vector<DeviceInfo>> devices = ListDevices();
  if (devices.ok() && !devices->empty()) available.insert(available.begin(), "cuda");
  SF_ASSIGN_OR_RETURN(model::BackendKind backend, ChooseBackend(flag, available));
  EngineEvaluatorOptions options;
  options.backend = backend;
  SF_ASSIGN_OR_RETURN(options.dtype, ChooseDType(dtype_flag, backend));
  if (backend == model::BackendKind::kCuda) {
    options.gpu_name = devices->front().name;
    // The CUDA context, cuBLAS and the pipeline's own buffers take about 1 GiB per GPU.
    constexpr int64_t kPerGpuOverhead = int64_t{1} << 30;
    for (const DeviceInfo& d : *devices) {
      options.device_memory.push_back(std::max<int64_t>(0, d.free_memory_bytes - kPerGpuOverhead));
    }
  }
  return options;
}

}  // namespace sf::worker
