// sfctl fidelity: the attention-fidelity table of every method at chosen compressions,
// on generated structured Q/K/V or on a Q/K/V dump from a model run.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/command.h"
#include "common/status.h"
#include "kernels/cpu/fidelity.h"
#include "methods/params.h"
#include "methods/registry.h"
#include "nlohmann/json.hpp"

namespace sf::cli {
namespace {

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
  bool exact = false;
  int threads = 0;
  bool random = false;
  std::string compare_dir;
};

std::string CatalogHelp() {
  std::string out =
      "Methods and parameters (defaults in brackets; * = the native budget, set from "
      "--compression):\n";
  for (const MethodInfo& m : AllMethods()) {
    absl::StrAppend(&out, "  ", m.name, " (", m.phases.Name(), "): ", m.summary, "\n");
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
                  "= worst head); est = estimation GFLOP; time_s = CPU seconds of the row "
                  "(calibration, selection, its sparse attention; dense: the shared scores "
                  "and dense outputs).\n");
  return out;
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
    absl::StatusOr<ParamValue> value = ParamFromText(*p, kv[1]);
    if (!value.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--param '", e, "': ", value.status().message()));
    }
    out[mp[0]][mp[1]] = *std::move(value);
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

// Gaussian Q/K/V (N(0, 1)), for comparisons on inputs without structure.
kernels::LayerQkv RandomQkv(const FidelityOptions& o) {
  kernels::LayerQkv qkv{kernels::Tensor(o.heads, o.length, o.head_dim),
                        kernels::Tensor(o.kv_heads, o.length, o.head_dim),
                        kernels::Tensor(o.kv_heads, o.length, o.head_dim)};
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<float> n01(0.0f, 1.0f);
  for (kernels::Tensor* t : {&qkv.q, &qkv.k, &qkv.v}) {
    for (float& x : t->data) x = n01(rng);
  }
  return qkv;
}

nlohmann::json ParamsJson(const ParamMap& params) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : params) std::visit([&, &key = k](const auto& x) { j[key] = x; }, v);
  return j;
}

absl::Status WriteFloats(const std::string& path, const kernels::Tensor& t) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(t.data.data()),
          static_cast<std::streamsize>(t.data.size() * sizeof(float)));
  if (!f) return absl::InternalError(absl::StrCat("writing ", path, " failed"));
  return absl::OkStatus();
}

// The inputs of deploy/compare/compare_study.py: the Q/K/V, and for each compared method
// at fixed parameters (the study's configs, scaled to the length) our selection and,
// for prefill methods, our output. Format: docs/methods.md.
absl::Status WriteCompareDir(const FidelityOptions& o, const kernels::LayerQkv& qkv, Io& io) {
  std::error_code ec;
  std::filesystem::create_directories(o.compare_dir, ec);
  if (ec)
    return absl::InvalidArgumentError(
        absl::StrCat("--compare-dir ", o.compare_dir, ": ", ec.message()));
  const std::string dir = o.compare_dir + "/";
  SF_RETURN_IF_ERROR(kernels::WriteQkvDump(dir + "qkv.bin", qkv));
  const int64_t len = qkv.k.len;
  const kernels::AttentionInput in{qkv.q.View(), qkv.k.View(), qkv.v.View(), 0};
  // What the study's code is compared on: the kept prompt tokens of an eviction, the
  // pages of one decode step, or a prefill selection's blocks or lines.
  enum class Kind { kKept, kPages, kBlocks, kLines };
  struct Case {
    std::string name, method;
    Kind kind;
    ParamMap params;
  };
  const std::vector<Case> cases = {
      {"block_sparse",
       "block_sparse",
       Kind::kBlocks,
       {{"block", int64_t{16}}, {"block_budget", int64_t{32}}}},
      {"vertical_slash",
       "vertical_slash",
       Kind::kLines,
       {{"last_q", int64_t{256}}, {"verticals", int64_t{256}}, {"slashes", int64_t{256}}}},
      {"flexprefill",
       "flexprefill",
       Kind::kLines,
       {{"gamma", 0.65}, {"last_q", int64_t{512}}, {"min_budget", int64_t{512}}}},
      {"flexprefill_mb128",
       "flexprefill",
       Kind::kLines,
       {{"gamma", 0.65}, {"last_q", int64_t{512}}, {"min_budget", int64_t{128}}}},
      {"snapkv", "snapkv", Kind::kKept, {{"token_capacity", int64_t{512}}}},
      {"ada_snapkv", "ada_snapkv", Kind::kKept, {{"token_capacity", int64_t{512}}}},
      {"quest", "quest", Kind::kPages, {{"token_budget", int64_t{256}}, {"gqa_shared", true}}},
      {"quest_per_head",
       "quest",
       Kind::kPages,
       {{"token_budget", int64_t{256}}, {"gqa_shared", false}}},
  };
  nlohmann::json doc;
  doc["format"] = "sf-compare-1";
  doc["qkv"] = "qkv.bin";
  doc["heads"] = qkv.q.heads;
  doc["kv_heads"] = qkv.k.heads;
  doc["length"] = len;
  doc["head_dim"] = qkv.q.dim;
  doc["source"] = o.random ? "random" : "structured";
  doc["cases"] = nlohmann::json::array();
  for (const Case& c : cases) {
    SF_ASSIGN_OR_RETURN(kernels::MethodParams typed,
                        kernels::ParseMethodParams(c.method, c.params));
    nlohmann::json j;
    j["name"] = c.name;
    j["method"] = c.method;
    ParamMap full = DefaultParams(*FindMethod(c.method));  // the file says everything
    for (const auto& [k, v] : c.params) full[k] = v;
    j["params"] = ParamsJson(full);
    if (c.kind == Kind::kKept) {
      // The whole sequence is the prompt: its last `window` queries observe.
      SF_ASSIGN_OR_RETURN(kernels::KeptTokens kept,
                          kernels::CompressKv(c.method, typed, qkv.q.View(), qkv.k.View()));
      j["kind"] = "kept";
      j["kept"] = kept.per_kv_head;
    } else if (c.kind == Kind::kPages) {
      // One decode step: the query at position L - 1 over the cache of L keys.
      const kernels::AttentionInput step{qkv.q.View().Rows(len - 1, 1), qkv.k.View(), qkv.v.View(),
                                         len - 1};
      SF_ASSIGN_OR_RETURN(kernels::SelectionResult sel,
                          kernels::DecodeSelect(c.method, typed, step, qkv.q.View()));
      j["kind"] = "pages";
      j["pages"] = kernels::DescribeSelection(*sel.selection).pages;
    } else {
      SF_ASSIGN_OR_RETURN(kernels::AttentionResult r,
                          kernels::PrefillAttention(c.method, typed, in));
      const kernels::SelectionStructure st = kernels::DescribeSelection(*r.selection);
      if (c.kind == Kind::kBlocks) {
        j["kind"] = "blocks";
        j["block"] = st.block;
        j["blocks"] = st.blocks;
      } else {
        j["kind"] = "lines";
        j["columns"] = st.columns;
        j["offsets"] = st.offsets;
      }
      j["output"] = "out_" + c.name + ".bin";
      j["measured_compression"] = r.compression();
      SF_RETURN_IF_ERROR(WriteFloats(dir + "out_" + c.name + ".bin", r.output));
    }
    doc["cases"].push_back(std::move(j));
  }
  std::ofstream f(dir + "cases.json");
  f << doc.dump(1) << "\n";
  if (!f) return absl::InternalError(absl::StrCat("writing ", dir, "cases.json failed"));
  io.out << "wrote " << cases.size() << " cases for deploy/compare/compare_study.py to "
         << o.compare_dir << "\n";
  return absl::OkStatus();
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
  } else if (o.random) {
    if (o.length < 1 || o.heads < 1 || o.kv_heads < 1 || o.heads % o.kv_heads != 0 ||
        o.head_dim < 1) {
      return absl::InvalidArgumentError(
          "--length, --heads, --kv-heads, --head-dim must be positive, heads a multiple of "
          "kv-heads");
    }
    qkv = RandomQkv(o);
    source = absl::StrCat("random N(0,1), seed ", o.seed);
  } else {
    SF_ASSIGN_OR_RETURN(
        qkv, kernels::GenerateStructuredQkv({o.length, o.heads, o.kv_heads, o.head_dim, o.seed}));
    source = absl::StrCat("structured generator, seed ", o.seed);
  }
  if (!o.write_dump.empty()) SF_RETURN_IF_ERROR(kernels::WriteQkvDump(o.write_dump, qkv));
  if (!o.compare_dir.empty()) return WriteCompareDir(o, qkv, io);
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
  auto print = [&](const char* phase_name, const MethodInfo& m, double target,
                   const absl::StatusOr<kernels::FidelityResult>& f) {
    if (!f.ok()) {
      io.out << absl::StrFormat("%-7s %-14s %6.3g  n/a: %s\n", phase_name, m.name, target,
                                f.status().message());
      return;
    }
    io.out << absl::StrFormat("%-7s %-14s %6.3g %8.2f %7.4f %7.4f %7.4f %7.4f %8.3f %7.2f  %s\n",
                              phase_name, m.name, target, f->measured_compression, f->mean_recall(),
                              f->min_recall(), f->mean_error(), f->max_error(),
                              f->estimation_flops / 1e9, f->seconds, FormatParams(f->params));
    if (o.per_head) {
      for (size_t h = 0; h < f->head_recall.size(); ++h) {
        io.out << absl::StrFormat("%-7s   head %-4d %6s %8s %7.4f %7s %7.4f\n", "", h, "", "",
                                  f->head_recall[h], "", f->head_error[h]);
      }
    }
  };
  for (Phase phase : phases) {
    const char* phase_name = PhaseName(phase);
    // The rows of this phase: each fitting method at each target (dense once).
    std::vector<std::pair<const MethodInfo*, double>> rows;
    for (const MethodInfo* m : methods) {
      if (!m->phases.Has(phase)) continue;
      const bool is_dense = m->budget_rule == BudgetRule::kNone;
      for (double target : is_dense ? std::vector<double>{1.0} : targets)
        rows.push_back({m, target});
    }
    if (!o.exact) {
      std::vector<kernels::FidelityRequest> requests;
      for (const auto& [m, target] : rows)
        requests.push_back({m->name, overrides[m->name], target});
      const auto results =
          kernels::MeasureFidelityTable(qkv, requests, {phase, o.decode_steps, o.threads});
      for (size_t i = 0; i < rows.size(); ++i)
        print(phase_name, *rows[i].first, rows[i].second, results[i]);
      continue;
    }
    const kernels::DenseReference ref = kernels::ComputeDenseReference(qkv, phase, o.decode_steps);
    for (const auto& [m, target] : rows) {
      const ParamMap base = overrides[m->name];
      absl::StatusOr<kernels::FidelityResult> f = [&]() -> absl::StatusOr<kernels::FidelityResult> {
        SF_ASSIGN_OR_RETURN(ParamMap p, kernels::CalibrateBudget(m->name, base, target, qkv, ref));
        SF_ASSIGN_OR_RETURN(kernels::FidelityResult r,
                            kernels::MeasureFidelity(m->name, p, qkv, ref));
        r.target_compression = target;
        return r;
      }();
      print(phase_name, *m, target, f);
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
  cmd->add_option("--heads", o->heads,
                  "query heads of generated Q/K/V; head h has kind h % 4 (local, vertical "
                  "stripes, slash, retrieval), so the default 8 gives each kind twice")
      ->capture_default_str();
  cmd->add_option("--kv-heads", o->kv_heads, "key/value heads (GQA groups of heads/kv-heads)")
      ->capture_default_str();
  cmd->add_option("--head-dim", o->head_dim, "head dimension (>= 64; 64 and 128 are the models')")
      ->capture_default_str();
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
  cmd->add_flag("--exact", o->exact,
                "use the float64 reference path for every row (minutes at 16K) instead of the "
                "float32 table that computes dense attention once (docs/methods.md)");
  cmd->add_option("--threads", o->threads, "worker threads, 0 = every core")->capture_default_str();
  cmd->add_flag("--random", o->random, "generate Gaussian N(0,1) Q/K/V instead of structured");
  cmd->add_option("--compare-dir", o->compare_dir,
                  "instead of the table, write Q/K/V, our selections and outputs of the methods "
                  "compared with the study's Python code to this folder "
                  "(deploy/compare/compare_study.py reads it)");
  cmd->footer(CatalogHelp());
  cmd->callback([o, &io, exit_code] { *exit_code = ReportStatus(RunFidelity(*o, io), io); });
}

}  // namespace sf::cli
