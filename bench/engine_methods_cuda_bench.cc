// Wall-clock of the sparse methods inside the bf16 CUDA engine (their device hooks,
// worker/method_hooks_cuda.h) beside dense, on Qwen2.5-7B's shape with random weights drawn
// on the device, cut to --layers of its 28 (each layer's work is the full model's, so
// seconds scale by 28 / layers). For each length: the prefill seconds of dense and of each
// prefill method, with its measured compression (dense pairs / pairs computed) and
// estimation FLOPs, and the decode ms/token of dense and of each decode method after a
// dense prefill of that length. Budgets are the registry's closed form at --compression;
// mass-threshold methods (flexprefill, xattention) keep their default thresholds and print
// the compression they reach. `est time` is the GPU time of the method's choosing (CUDA
// events, MethodHook::estimation_seconds): seconds over the prefill, ms per decode step
// for per-step methods, seconds of the one choice after prefill for evicting ones. The
// backend columns say where each phase's attention ran; a first untimed dense run sets up
// the engine and prints the kernels dense attention runs on (attention_kernels).
//
//   engine_methods_cuda_bench [--layers 4] [--lengths 32768,131072] [--compression 10]
//                             [--decode 32] [--prefill-methods a,b] [--decode-methods a,b]
//                             [--param method.name=value]...  (e.g. block_sparse.block=64)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/qwen25_shapes.h"
#include "common/status.h"
#include "methods/params.h"
#include "methods/registry.h"
#include "worker/method_hooks.h"
#include "worker/model/engine.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Flags {
  int64_t layers = 4;
  std::vector<int64_t> lengths = {32768, 131072};
  double compression = 10;
  int decode_steps = 32;
  std::vector<std::string> prefill_methods = {"streaming",    "vertical_slash", "flexprefill",
                                              "block_sparse", "xattention",     "tri_shape"};
  std::vector<std::string> decode_methods = {"streaming", "snapkv", "ada_snapkv", "quest",
                                             "oracle_topk"};
  // --param method.name=value: replaces a default before the budget is set.
  std::map<std::string, sf::ParamMap> overrides;
};

// "method.name=value" into flags->overrides, the value parsed as the parameter's type.
absl::Status ParseOverride(const std::string& text, Flags* f) {
  const std::vector<std::string> sides = absl::StrSplit(text, absl::MaxSplits('=', 1));
  const std::vector<std::string> names = absl::StrSplit(sides[0], absl::MaxSplits('.', 1));
  if (sides.size() != 2 || names.size() != 2) {
    return absl::InvalidArgumentError("--param '" + text + "': write method.name=value");
  }
  SF_ASSIGN_OR_RETURN(const sf::MethodInfo* info, sf::LookUpMethod(names[0]));
  const sf::MethodParam* param = sf::FindParam(*info, names[1]);
  if (param == nullptr) {
    return absl::InvalidArgumentError("--param '" + text + "': method " + names[0] +
                                      " has no parameter '" + names[1] + "'");
  }
  SF_ASSIGN_OR_RETURN(f->overrides[names[0]][names[1]], sf::ParamFromText(*param, sides[1]));
  return absl::OkStatus();
}

absl::Status ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return absl::InvalidArgumentError(flag + " needs a value");
    const std::string value = argv[++i];
    bool ok = true;
    if (flag == "--layers") {
      ok = absl::SimpleAtoi(value, &f->layers) && f->layers > 0;
    } else if (flag == "--compression") {
      ok = absl::SimpleAtod(value, &f->compression) && f->compression >= 1;
    } else if (flag == "--decode") {
      ok = absl::SimpleAtoi(value, &f->decode_steps) && f->decode_steps > 0;
    } else if (flag == "--lengths") {
      f->lengths.clear();
      for (absl::string_view s : absl::StrSplit(value, ',')) {
        int64_t n = 0;
        ok = ok && absl::SimpleAtoi(s, &n) && n > 0;
        f->lengths.push_back(n);
      }
    } else if (flag == "--param") {
      SF_RETURN_IF_ERROR(ParseOverride(value, f));
    } else if (flag == "--prefill-methods" || flag == "--decode-methods") {
      auto& list = flag == "--prefill-methods" ? f->prefill_methods : f->decode_methods;
      list = absl::StrSplit(value, ',', absl::SkipEmpty());
    } else {
      return absl::InvalidArgumentError("unknown flag " + flag);
    }
    if (!ok) return absl::InvalidArgumentError("bad value '" + value + "' for " + flag);
  }
  return absl::OkStatus();
}

// `name` with its defaults, then `overrides`, and the closed-form budget for
// `compression` at `tokens` (mass-threshold methods: their thresholds).
absl::StatusOr<sf::MethodChoice> Choice(const std::string& name, const sf::ParamMap& overrides,
                                        double compression, int64_t tokens, sf::Phase phase) {
  SF_ASSIGN_OR_RETURN(const sf::MethodInfo* info, sf::LookUpMethod(name));
  sf::MethodChoice m;
  m.name = name;
  m.params = sf::DefaultParams(*info);
  for (const auto& [param, value] : overrides) m.params[param] = value;
  absl::StatusOr<sf::ParamMap> budget =
      sf::ParamsForCompression(name, m.params, compression, tokens, phase);
  if (budget.ok()) {
    m.params = *std::move(budget);
  } else if (budget.status().code() != absl::StatusCode::kFailedPrecondition) {
    return budget.status();
  }
  return m;
}

// Forwards to a method hook but refuses its host forms: a method that would run on the
// host mirror (the CPU reference, hours at 128K) fails at once and its row says so.
class DeviceOnly : public sf::model::AttentionHook {
 public:
  explicit DeviceOnly(sf::worker::MethodHook* inner) : inner_(inner) {}
  std::string Name() const override { return inner_->Name(); }
  absl::Status Attend(const sf::model::AttentionCall& call, sf::model::AttentionStats*) override {
    return HostRefused(call);
  }
  absl::Status AfterPrefill(const sf::model::AttentionCall& call) override {
    return HostRefused(call);
  }
  bool IsExactDense() const override { return inner_->IsExactDense(); }
  bool SupportsDevice(const sf::model::AttentionCall& call) const override {
    return inner_->SupportsDevice(call);
  }
  absl::Status AttendOnDevice(const sf::model::AttentionCall& call,
                              sf::model::AttentionStats* stats) override {
    return inner_->AttendOnDevice(call, stats);
  }
  absl::Status AfterPrefillOnDevice(const sf::model::AttentionCall& call) override {
    return inner_->AfterPrefillOnDevice(call);
  }
  bool WantsPageBounds() const override { return inner_->WantsPageBounds(); }

 private:
  absl::Status HostRefused(const sf::model::AttentionCall& call) const {
    return absl::FailedPreconditionError(
        absl::StrCat(inner_->Name(), " would run on the host mirror at layer ", call.layer));
  }
  sf::worker::MethodHook* inner_;
};

struct Run {
  double seconds = 0;  // prefill seconds, or decode ms per token
  double compression = 1;
  double estimation_gflop = 0;
  // GPU time of the selection: seconds in total, or ms per decode step for methods that
  // choose per step (estimation_per_step).
  double estimation_seconds = 0;
  bool estimation_per_step = false;
  std::string prefill_backend, decode_backend;
  std::string kernels;  // EngineCounters::attention_kernels (dense attention's kernels)
};

// Prefills `prompt` with the two methods and decodes `steps` tokens when steps > 0.
absl::StatusOr<Run> Measure(sf::model::Engine& engine, const sf::MethodChoice& prefill,
                            const sf::MethodChoice& decode, const std::vector<sf::TokenId>& prompt,
                            int steps) {
  SF_ASSIGN_OR_RETURN(auto prefill_hook, sf::worker::MakePrefillHook(prefill));
  SF_ASSIGN_OR_RETURN(auto decode_hook, sf::worker::MakeDecodeHook(decode));
  engine.Reset();
  DeviceOnly prefill_device(prefill_hook.get()), decode_device(decode_hook.get());
  engine.SetAttention(&prefill_device, &decode_device);
  // The engine must not keep the hooks past this function, on any return.
  struct Detach {
    sf::model::Engine& engine;
    ~Detach() { engine.SetAttention(nullptr, nullptr); }
  } detach{engine};
  // The counters add up over runs: this run's pairs are the difference.
  const sf::model::EngineCounters before = engine.counters();
  Run run;
  const auto start = Clock::now();
  SF_ASSIGN_OR_RETURN(std::vector<float> logits, engine.Prefill(prompt));
  run.seconds = Seconds(start, Clock::now());
  const sf::model::AttentionStats* stats = &engine.counters().prefill_attention;
  const sf::model::AttentionStats* stats_before = &before.prefill_attention;
  double flops = prefill_hook->estimation_flops();
  run.estimation_seconds = prefill_hook->estimation_seconds();
  if (steps > 0) {
    const double evicting = decode_hook->estimation_seconds();  // the choice after prefill
    SF_RETURN_IF_ERROR(engine.Decode(sf::model::ArgMax(logits)).status());  // warm-up
    const auto decode_start = Clock::now();
    for (int i = 0; i < steps; ++i) {
      SF_ASSIGN_OR_RETURN(logits, engine.Decode(static_cast<sf::TokenId>(i + 2)));
    }
    run.seconds = 1e3 * Seconds(decode_start, Clock::now()) / steps;
    stats = &engine.counters().decode_attention;
    stats_before = &before.decode_attention;
    flops = decode_hook->estimation_flops();
    // Per step: what the steps' selections took (the warm-up step included); eviction
    // methods choose once, after prefill: their row shows that choice's total seconds.
    const double per_step = (decode_hook->estimation_seconds() - evicting) / (steps + 1);
    run.estimation_per_step = per_step > 0;
    run.estimation_seconds = run.estimation_per_step ? 1e3 * per_step : evicting;
  }
  const double computed = stats->pairs_computed - stats_before->pairs_computed;
  run.compression = computed > 0 ? (stats->pairs_dense - stats_before->pairs_dense) / computed : 1;
  run.estimation_gflop = flops / 1e9;
  run.kernels = engine.counters().attention_kernels;
  run.prefill_backend = sf::model::AttentionBackendName(engine.counters().prefill_backend);
  run.decode_backend = sf::model::AttentionBackendName(engine.counters().decode_backend);
  return run;
}

sf::ParamMap Overrides(const Flags& flags, const std::string& method) {
  const auto it = flags.overrides.find(method);
  return it == flags.overrides.end() ? sf::ParamMap{} : it->second;
}

absl::Status Main(const Flags& flags) {
  sf::model::EngineOptions eo;
  eo.backend = sf::model::BackendKind::kCuda;
  eo.dtype = sf::model::ComputeDType::kBfloat16;
  int64_t longest = 0;
  for (int64_t n : flags.lengths) longest = std::max(longest, n);
  eo.reserve_tokens = longest + flags.decode_steps + 2;
  SF_ASSIGN_OR_RETURN(sf::model::ModelConfig shape,
                      sf::model::Qwen25Shape("qwen2.5-7b", flags.layers));
  SF_ASSIGN_OR_RETURN(auto engine,
                      sf::model::CreateCudaEngineWithRandomWeights(shape, eo, 1, 0.02f));
  std::printf("engine_methods_cuda_bench: Qwen2.5-7B shape, %lld layers, bf16, compression %g\n",
              static_cast<long long>(flags.layers), flags.compression);
  std::fprintf(stderr, "engine ready; warm-up\n");
  {
    // One short untimed prefill + decode first: cuBLAS handles, workspaces and the decode
    // graph are set up there, not in the first measured row.
    const std::vector<sf::TokenId> warm(2048, 17);
    SF_RETURN_IF_ERROR(Measure(*engine, sf::MethodChoice{}, sf::MethodChoice{}, warm, 2).status());
    std::printf("dense attention kernels: %s\n", engine->counters().attention_kernels.c_str());
  }
  for (const std::string& name : flags.prefill_methods) {
    const sf::MethodInfo* info = sf::FindMethod(name);
    if (info == nullptr || info->budget_rule != sf::BudgetRule::kMassThreshold) continue;
    sf::ParamMap params = sf::DefaultParams(*info);
    for (const auto& [param, value] : Overrides(flags, name)) params[param] = value;
    const auto it = params.find(info->budget_param);
    if (it == params.end() || !std::holds_alternative<double>(it->second)) continue;
    std::printf("%s: no closed-form budget; %s %g, compression as reached\n", name.c_str(),
                std::string(info->budget_param).c_str(), std::get<double>(it->second));
  }
  std::printf("%-8s %-7s %-15s %12s %8s %11s %10s %10s %9s %s\n", "tokens", "phase", "method",
              "time", "vs dense", "compression", "est GFLOP", "est time", "prefill", "decode");
  for (int64_t n : flags.lengths) {
    std::vector<sf::TokenId> prompt(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      prompt[static_cast<size_t>(i)] = static_cast<sf::TokenId>((i * 7919 + 13) % 152064);
    }
    for (sf::Phase phase : {sf::Phase::kPrefill, sf::Phase::kDecode}) {
      const bool decode = phase == sf::Phase::kDecode;
      const sf::MethodChoice dense = sf::MethodChoice{};
      std::vector<std::string> names = {"dense"};
      for (const std::string& m : decode ? flags.decode_methods : flags.prefill_methods) {
        names.push_back(m);
      }
      double dense_time = 0;
      for (const std::string& name : names) {
        SF_ASSIGN_OR_RETURN(const sf::MethodChoice method,
                            Choice(name, Overrides(flags, name), flags.compression, n, phase));
        std::fprintf(stderr, "running %s %s at %lld tokens\n", decode ? "decode" : "prefill",
                     name.c_str(), static_cast<long long>(n));
        absl::StatusOr<Run> run = Measure(*engine, decode ? dense : method, decode ? method : dense,
                                          prompt, decode ? flags.decode_steps : 0);
        if (!run.ok()) {
          std::printf("%-8lld %-7s %-15s failed: %s\n", static_cast<long long>(n),
                      decode ? "decode" : "prefill", name.c_str(),
                      std::string(run.status().message()).substr(0, 160).c_str());
          continue;
        }
        if (name == "dense") dense_time = run->seconds;
        std::printf("%-8lld %-7s %-15s %9.3f %-2s %8.2fx %11.2f %10.3g %7.3f %-2s %9s %s\n",
                    static_cast<long long>(n), decode ? "decode" : "prefill", name.c_str(),
                    run->seconds, decode ? "ms" : "s",
                    run->seconds > 0 ? dense_time / run->seconds : 0.0, run->compression,
                    run->estimation_gflop, run->estimation_seconds,
                    run->estimation_per_step ? "ms" : "s", run->prefill_backend.c_str(),
                    run->decode_backend.c_str());
        std::fflush(stdout);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  // Each row as soon as it is measured, even when the caller cuts the run short.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Flags flags;
  absl::Status s = ParseFlags(argc, argv, &flags);
  if (s.ok()) s = Main(flags);
  if (!s.ok()) {
    std::fprintf(stderr, "engine_methods_cuda_bench: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
