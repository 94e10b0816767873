// `sfctl validate spec.yaml`: checks a sweep spec and prints the grid size per axis and
// the job count after deduplication; on errors prints each as file:line:column and exits 2.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/command.h"
#include "common/spec.h"

namespace sf::cli {
namespace {

std::string Mib(int64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

int RunValidate(const std::string& path, const SpecOptions& options, bool list, Io& io) {
  std::vector<SpecError> errors;
  absl::StatusOr<SweepSpec> spec = LoadSweepSpec(path, options, &errors);
  if (!spec.ok()) {
    if (errors.empty()) return ReportStatus(spec.status(), io);
    for (const SpecError& e : errors) io.err << e.ToString() << "\n";
    io.err << "sfctl: " << errors.size() << (errors.size() == 1 ? " error" : " errors") << " in "
           << path << "; nothing would be submitted\n";
    return kExitUsage;
  }
  ExpandStats stats;
  absl::StatusOr<std::vector<JobSpec>> jobs = ExpandSweep(*spec, &stats);
  if (!jobs.ok()) return ReportStatus(jobs.status(), io);

  io.out << path << ": sweep '" << spec->name << "' is valid\n";
  std::vector<std::string> models, lengths, seeds, tasks;
  for (const ModelEntry& m : spec->models) models.push_back(m.ref.name);
  for (int64_t l : spec->sequence_lengths) lengths.push_back(absl::StrCat(l));
  for (uint64_t s : spec->seeds) seeds.push_back(absl::StrCat(s));
  for (const TaskChoice& t : spec->tasks) tasks.push_back(t.name);
  for (const GridAxis& axis : spec->axes) {
    std::string detail = axis.detail;
    if (axis.name == "models") detail = absl::StrJoin(models, ", ");
    if (axis.name == "sequence_lengths") detail = absl::StrJoin(lengths, ", ");
    if (axis.name == "tasks") detail = absl::StrJoin(tasks, ", ");
    if (axis.name == "seeds") detail = absl::StrJoin(seeds, ", ");
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
  struct Args {
    std::string path;
    std::string base_dir;
    int64_t max_jobs = kDefaultMaxJobs;
    bool list = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("spec", args->path, "the sweep spec (YAML)")->required();
  cmd->add_option("--max-jobs", args->max_jobs,
                  "the configured limit on grid size; a spec's limits.max_jobs may only lower it")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--base-dir", args->base_dir,
                  "resolve relative model and dataset paths against this folder (default: the "
                  "current folder)");
  cmd->add_flag("--list", args->list, "also print every job: key prefix, axes, memory estimate");
  cmd->callback([args, &io, exit_code] {
    SpecOptions options;
    options.max_jobs = args->max_jobs;
    options.base_dir = args->base_dir;
    *exit_code = RunValidate(args->path, options, args->list, io);
  });
}

}  // namespace sf::cli
