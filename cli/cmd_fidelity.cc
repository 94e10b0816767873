// sfctl fidelity: the attention-fidelity table of every method at chosen compressions,
// on generated structured Q/K/V or on a Q/K/V dump from a model run.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/command.h"
#include "common/method_catalog.h"
#include "common/status.h"
#include "kernels/cpu/fidelity.h"

namespace sf::cli {
namespace {

using kernels::Phase;

struct FidelityOptions {
  int64_t length = 4096;
  int64_t heads = 8;
  int64_t kv_heads = 2;
  int64_t head_dim = 64;
  uint64_t seed = 1;
  std::string compression = "2,5,10";
  std::string methods = "all";
  std::string phase = "both";
  int64_t decode_steps = 64;
  std::string dump;
  std::string write_dump;
  std::vector<std::string> params;
  bool per_head = false;
};

std::string CatalogHelp() {
  std::string out =
      "Methods and parameters (defaults in brackets; * = the native budget, set from "
      "--compression):\n";
  for (const MethodInfo& m : AllMethods()) {
    absl::StrAppend(&out, "  ", m.name, " (", PhaseName(m.phase), "): ", m.summary, "\n");
    for (const MethodParam& p : m.params) {
      const bool budget = std::string(p.name) == m.budget_param;
      absl::StrAppend(&out, "      ", p.name, budget ? "*" : "", " [",
                      *p.default_value ? p.default_value : "-", "] ", p.help,
                      *p.choices ? absl::StrCat(" (", p.choices, ")") : "", "\n");
    }
  }
  absl::StrAppend(&out,
                  "Columns: target = asked compression; measured = causal pairs / pairs "
                  "computed; recall = dense attention mass on the chosen keys (mean over "
                  "heads; min = worst head); err = ||O - O_dense|| / ||O_dense|| (mean; max "
                  "= worst head); est = estimation GFLOP.\n");
  return out;
}

absl::StatusOr<ParamValue> ParseValue(const MethodParam& p, absl::string_view text) {
  switch (p.type) {
    case ParamType::kInt: {
      int64_t v;
      if (absl::SimpleAtoi(text, &v)) return v;
      break;
    }
    case ParamType::kFloat: {
      double v;
      if (absl::SimpleAtod(text, &v)) return v;
      break;
    }
    case ParamType::kBool: {
      bool v;
      if (absl::SimpleAtob(text, &v)) return v;
      break;
    }
    case ParamType::kString:
      return std::string(text);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--param ", p.name, "=", text, ": not a valid value for this parameter"));
}

// "--param snapkv.window=128" entries, grouped by method.
absl::StatusOr<std::map<std::string, ParamMap>> ParseOverrides(
    const std::vector<std::string>& entries) {
  std::map<std::string, ParamMap> out;
  for (const std::string& e : entries) {
    std::vector<std::string> kv = absl::StrSplit(e, absl::MaxSplits('=', 1));
    std::vector<std::string> mp = absl::StrSplit(kv[0], absl::MaxSplits('.', 1));
    if (kv.size() != 2 || mp.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("--param '", e, "': expected METHOD.PARAM=VALUE, e.g. snapkv.window=128"));
    }
    const MethodInfo* m = FindMethod(mp[0]);
    if (m == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("--param '", e, "': unknown method '", mp[0], "'"));
    }
    const MethodParam* p = FindParam(*m, mp[1]);
    if (p == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("--param '", e, "': method ", mp[0], " has no parameter '", mp[1], "'"));
    }
    SF_ASSIGN_OR_RETURN(out[mp[0]][mp[1]], ParseValue(*p, kv[1]));
  }
  return out;
}

std::string FormatParams(const ParamMap& params) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : params) {
    std::string value = std::visit(
        [](const auto& x) -> std::string {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>) {
            return x;
          } else if constexpr (std::is_same_v<T, bool>) {
            return x ? "true" : "false";
          } else if constexpr (std::is_same_v<T, double>) {
            return absl::StrFormat("%.4g", x);
          } else {
            return absl::StrCat(x);
          }
        },
        v);
    parts.push_back(absl::StrCat(k, "=", value));
  }
  return absl::StrJoin(parts, ",");
}

absl::Status RunFidelity(const FidelityOptions& o, Io& io) {
  std::vector<double> targets;
  for (absl::string_view t : absl::StrSplit(o.compression, ',', absl::SkipEmpty())) {
    double c;
    if (!absl::SimpleAtod(t, &c) || !(c >= 1.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--compression: '", t, "' is not a number >= 1 (1 = dense)"));
    }
    targets.push_back(c);
  }
  std::vector<const MethodInfo*> methods;
  if (o.methods == "all") {
    for (const MethodInfo& m : AllMethods()) methods.push_back(&m);
  } else {
    for (absl::string_view n : absl::StrSplit(o.methods, ',', absl::SkipEmpty())) {
      const MethodInfo* m = FindMethod(n);
      if (m == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--methods: unknown method '", n, "'; see sfctl fidelity --help for the list"));
      }
      methods.push_back(m);
    }
  }
  std::vector<Phase> phases;
  if (o.phase == "prefill" || o.phase == "both") phases.push_back(Phase::kPrefill);
  if (o.phase == "decode" || o.phase == "both") phases.push_back(Phase::kDecode);
  if (phases.empty()) {
    return absl::InvalidArgumentError("--phase must be prefill, decode or both");
  }
  SF_ASSIGN_OR_RETURN(auto overrides, ParseOverrides(o.params));

  kernels::LayerQkv qkv;
  std::string source;
  if (!o.dump.empty()) {
    SF_ASSIGN_OR_RETURN(qkv, kernels::ReadQkvDump(o.dump));
    source = absl::StrCat("dump ", o.dump);
  } else {
    SF_ASSIGN_OR_RETURN(
        qkv, kernels::GenerateStructuredQkv({o.length, o.heads, o.kv_heads, o.head_dim, o.seed}));
    source = absl::StrCat("structured generator, seed ", o.seed);
  }
  if (!o.write_dump.empty()) SF_RETURN_IF_ERROR(kernels::WriteQkvDump(o.write_dump, qkv));
  const int64_t len = qkv.k.len;
  if (o.decode_steps < 1 || o.decode_steps >= len) {
    return absl::InvalidArgumentError(
        absl::StrCat("--decode-steps must lie in [1, ", len - 1, "], got ", o.decode_steps));
  }
  io.out << absl::StrFormat("# %s: L=%d Hq=%d Hkv=%d D=%d; decode = last %d rows\n", source, len,
                            qkv.q.heads, qkv.k.heads, qkv.q.dim, o.decode_steps);
  io.out << absl::StrFormat("%-7s %-14s %6s %8s %7s %7s %7s %7s %8s %7s  %s\n", "phase", "method",
                            "target", "measured", "recall", "min", "err", "max", "est", "time_s",
                            "params");
  for (Phase phase : phases) {
    const kernels::DenseReference ref = kernels::ComputeDenseReference(qkv, phase, o.decode_steps);
    const char* phase_name = phase == Phase::kPrefill ? "prefill" : "decode";
    for (const MethodInfo* m : methods) {
      const bool fits = m->phase == MethodPhase::kBoth ||
                        (m->phase == MethodPhase::kPrefill) == (phase == Phase::kPrefill);
      if (!fits) continue;
      const bool is_dense = std::string(m->name) == "dense";
      for (double target : is_dense ? std::vector<double>{1.0} : targets) {
        const ParamMap base = overrides[m->name];
        absl::StatusOr<kernels::FidelityResult> f =
            [&]() -> absl::StatusOr<kernels::FidelityResult> {
          SF_ASSIGN_OR_RETURN(ParamMap p,
                              kernels::CalibrateBudget(m->name, base, target, qkv, ref));
          SF_ASSIGN_OR_RETURN(kernels::FidelityResult r,
                              kernels::MeasureFidelity(m->name, p, qkv, ref));
          r.target_compression = target;
          return r;
        }();
        if (!f.ok()) {
          io.out << absl::StrFormat("%-7s %-14s %6.3g  n/a: %s\n", phase_name, m->name, target,
                                    f.status().message());
          continue;
        }
        io.out << absl::StrFormat(
            "%-7s %-14s %6.3g %8.2f %7.4f %7.4f %7.4f %7.4f %8.3f %7.2f  %s\n", phase_name, m->name,
            target, f->measured_compression, f->mean_recall(), f->min_recall(), f->mean_error(),
            f->max_error(), f->estimation_flops / 1e9, f->seconds, FormatParams(f->params));
        if (o.per_head) {
          for (size_t h = 0; h < f->head_recall.size(); ++h) {
            io.out << absl::StrFormat("%-7s   head %-4d %6s %8s %7.4f %7s %7.4f\n", "", h, "", "",
                                      f->head_recall[h], "", f->head_error[h]);
          }
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

void AddFidelityCommand(CLI::App& app, Io& io, int* exit_code) {
  auto o = std::make_shared<FidelityOptions>();
  CLI::App* cmd = app.add_subcommand(
      "fidelity",
      "Attention fidelity of every method at chosen compressions: recall of dense attention "
      "mass, output error and measured compression, on structured Q/K/V or a dump");
  cmd->add_option("--length", o->length, "tokens of generated Q/K/V")->capture_default_str();
  cmd->add_option("--heads", o->heads, "query heads")->capture_default_str();
  cmd->add_option("--kv-heads", o->kv_heads, "key/value heads (GQA)")->capture_default_str();
  cmd->add_option("--head-dim", o->head_dim, "head dimension")->capture_default_str();
  cmd->add_option("--seed", o->seed, "generator seed")->capture_default_str();
  cmd->add_option("--compression", o->compression,
                  "comma-separated compression targets (1/(1-sparsity)); threshold methods "
                  "are calibrated to them")
      ->capture_default_str();
  cmd->add_option("--methods", o->methods, "comma-separated methods, or all")
      ->capture_default_str();
  cmd->add_option("--phase", o->phase, "prefill, decode or both")->capture_default_str();
  cmd->add_option("--decode-steps", o->decode_steps,
                  "decode phase: the last N rows are decode steps after a prompt of L - N")
      ->capture_default_str();
  cmd->add_option("--dump", o->dump,
                  "read Q/K/V from this dump (format SFQKV001, docs/methods.md) instead of "
                  "generating");
  cmd->add_option("--write-dump", o->write_dump, "also write the Q/K/V used to this file");
  cmd->add_option("--param", o->params,
                  "METHOD.PARAM=VALUE overriding a default, repeatable (e.g. "
                  "snapkv.window=128)");
  cmd->add_flag("--per-head", o->per_head, "also print recall and error per query head");
  cmd->footer(CatalogHelp());
  cmd->callback([o, &io, exit_code] { *exit_code = ReportStatus(RunFidelity(*o, io), io); });
}

}  // namespace sf::cli
