// `sfctl validate spec.yaml`: checks a sweep spec and prints the grid size per axis and
// the job count after deduplication; on errors prints each as file:line:column and exits 2.
#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/command.h"
#include "common/spec.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace sf::cli {
namespace {

std::string Mib(int64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

// The values joined, or the first few and a count when there are many.
std::string Abbreviated(const std::vector<std::string>& values) {
  constexpr size_t kShown = 8;
  if (values.size() <= kShown) return absl::StrJoin(values, ", ");
  return absl::StrCat(absl::StrJoin(values.begin(), values.begin() + kShown, ", "), ", ... (",
                      values.size() - kShown, " more)");
}

struct ValidateArgs {
  std::string path;
  std::string base_dir;
  int64_t max_jobs = kDefaultMaxJobs;
  bool list = false;
  std::string format = "text";
  std::vector<std::string> overrides;
};

// The spec file with the --set overrides applied.
absl::StatusOr<SweepSpec> LoadWithOverrides(const ValidateArgs& args, const SpecOptions& options,
                                            std::vector<SpecError>* errors) {
  if (args.overrides.empty()) return LoadSweepSpec(args.path, options, errors);
  std::ifstream in(args.path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read sweep spec ", args.path, "; check the file name"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  SF_ASSIGN_OR_RETURN(std::string overridden, ApplySpecOverrides(text.str(), args.overrides));
  return ParseSweepSpec(overridden, absl::StrCat(args.path, " (with --set)"), options, errors);
}

int PrintJson(const ValidateArgs& args, const absl::StatusOr<SweepSpec>& spec,
              const std::vector<SpecError>& errors, const std::vector<JobSpec>* jobs,
              const ExpandStats& stats, Io& io) {
  nlohmann::ordered_json o = {{"spec", args.path}, {"valid", spec.ok() && jobs != nullptr}};
  if (!spec.ok()) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const SpecError& e : errors) {
      list.push_back(
          {{"file", e.file}, {"line", e.line}, {"column", e.column}, {"message", e.message}});
    }
    if (errors.empty()) list.push_back({{"message", std::string(spec.status().message())}});
    o["errors"] = std::move(list);
    io.out << o.dump(2) << "\n";
    return errors.empty() ? ExitCodeFor(spec.status()) : kExitUsage;
  }
  o["name"] = spec->name;
  nlohmann::ordered_json axes = nlohmann::ordered_json::array();
  for (const GridAxis& axis : spec->axes) {
    axes.push_back({{"name", axis.name}, {"size", axis.size}, {"detail", axis.detail}});
  }
  o["axes"] = std::move(axes);
  o["grid"] = spec->grid_size;
  o["jobs"] = jobs->size();
  o["duplicates"] = stats.duplicates;
  o["max_jobs"] = spec->max_jobs;
  if (args.list) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const JobSpec& j : *jobs) {
      list.push_back({{"key", j.key},
                      {"model", j.model.name},
                      {"length", j.sequence_length},
                      {"prefill", j.prefill.name},
                      {"decode", j.decode.name},
                      {"task", j.task.name},
                      {"seed", j.seed},
                      {"memory_bytes", j.memory_bytes}});
    }
    o["job_list"] = std::move(list);
  }
  io.out << o.dump(2) << "\n";
  return kExitOk;
}

int RunValidate(const ValidateArgs& args, const SpecOptions& options, Io& io) {
  const std::string& path = args.path;
  const bool json = args.format == "json";
  std::vector<SpecError> errors;
  absl::StatusOr<SweepSpec> spec = LoadWithOverrides(args, options, &errors);
  ExpandStats stats;
  if (json && !spec.ok()) return PrintJson(args, spec, errors, nullptr, stats, io);
  if (!spec.ok()) {
    if (errors.empty()) return ReportStatus(spec.status(), io);
    for (const SpecError& e : errors) io.err << e.ToString() << "\n";
    io.err << "sfctl: " << errors.size() << (errors.size() == 1 ? " error" : " errors") << " in "
           << path << "; nothing would be submitted\n";
    return kExitUsage;
  }
  absl::StatusOr<std::vector<JobSpec>> jobs = ExpandSweep(*spec, &stats);
  if (!jobs.ok()) return ReportStatus(jobs.status(), io);
  if (json) return PrintJson(args, spec, errors, &*jobs, stats, io);
  const bool list = args.list;

  io.out << path << ": sweep '" << spec->name << "' is valid\n";
  std::vector<std::string> models, lengths, seeds;
  for (const ModelEntry& m : spec->models) models.push_back(m.ref.name);
  for (int64_t l : spec->sequence_lengths) lengths.push_back(absl::StrCat(l));
  for (uint64_t s : spec->seeds) seeds.push_back(absl::StrCat(s));
  for (const GridAxis& axis : spec->axes) {
    std::string detail = axis.detail;
    if (axis.name == "models") detail = Abbreviated(models);
    if (axis.name == "sequence_lengths") detail = Abbreviated(lengths);
    if (axis.name == "seeds") detail = Abbreviated(seeds);
    io.out << absl::StrFormat("  %-17s %7d  %s\n", axis.name, axis.size, detail);
  }
  io.out << absl::StrFormat("  %-17s %7d\n", "grid", spec->grid_size);
  io.out << absl::StrFormat("  %-17s %7d  (%d duplicate%s removed, limit %d)\n", "jobs",
                            jobs->size(), stats.duplicates, stats.duplicates == 1 ? "" : "s",
                            spec->max_jobs);
  if (!jobs->empty()) {
    const JobSpec& biggest = *std::max_element(
        jobs->begin(), jobs->end(),
        [](const JobSpec& a, const JobSpec& b) { return a.memory_bytes < b.memory_bytes; });
    io.out << absl::StrFormat("  %-17s %s  (%s at length %d)\n", "largest memory",
                              Mib(biggest.memory_bytes), biggest.model.name,
                              biggest.sequence_length);
  }
  if (list) {
    io.out << absl::StrFormat("\n%-16s %-12s %7s %-16s %-16s %-16s %6s %12s\n", "key", "model",
                              "length", "prefill", "decode", "task", "seed", "memory");
    for (const JobSpec& j : *jobs) {
      auto method = [](const MethodChoice& m) {
        return m.compression.has_value() ? absl::StrFormat("%s@%g", m.name, *m.compression)
                                         : m.name;
      };
      io.out << absl::StrFormat("%-16s %-12s %7d %-16s %-16s %-16s %6d %12s\n", j.key.substr(0, 16),
                                j.model.name, j.sequence_length, method(j.prefill),
                                method(j.decode), j.task.name, j.seed, Mib(j.memory_bytes));
    }
  }
  return kExitOk;
}

}  // namespace

void AddValidateCommand(CLI::App& app, Io& io, int* exit_code) {
  CLI::App* cmd = app.add_subcommand(
      "validate",
      "Check a sweep spec without submitting it: print the grid size per axis and the number "
      "of jobs after deduplication. Errors are printed as file:line:column: error: message; "
      "exit code 2 when there are any. The spec syntax is described in docs/spec.md.");
  auto args = std::make_shared<ValidateArgs>();
  cmd->add_option("spec", args->path, "the sweep spec (YAML)")->required();
  cmd->add_option("--max-jobs", args->max_jobs,
                  "the configured limit on grid size; a spec's limits.max_jobs may only lower it")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--base-dir", args->base_dir,
                  "resolve relative model and dataset paths against this folder (default: the "
                  "current folder)");
  cmd->add_flag("--list", args->list, "also print every job: key prefix, axes, memory estimate");
  AddFormatFlag(cmd, &args->format, {"text", "json"});
  cmd->add_option("--set", args->overrides,
                  "override a spec key as sfctl run and submit do, e.g. --set "
                  "sequence_lengths=[4096] (repeatable; the value is YAML)")
      ->allow_extra_args(false);
  cmd->callback([args, &io, exit_code] {
    SpecOptions options;
    options.max_jobs = args->max_jobs;
    options.base_dir = args->base_dir;
    *exit_code = RunValidate(*args, options, io);
  });
}

}  // namespace sf::cli
