// Sweep specs: YAML -> validated SweepSpec -> the grid of jobs. Validation collects every
// error it can, each located at file:line:column with a message a person can act on; an
// invalid spec yields no SweepSpec and so no jobs. Syntax and rules: docs/spec.md.
#ifndef SF_COMMON_SPEC_H_
#define SF_COMMON_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/did_you_mean.h"
#include "common/job.h"
#include "common/model_identity.h"
#include "common/phase.h"

namespace sf {

// The default ceiling on a sweep's grid; a spec's `limits.max_jobs` may only lower it.
inline constexpr int64_t kDefaultMaxJobs = 100000;

// Decode length assumed for memory and cost estimates when the spec leaves
// max_new_tokens to the task (0).
inline constexpr int64_t kEstimateNewTokens = 256;

struct SpecError {
  std::string file;
  int line = 0;  // 1-based; 0 when the error is about the file as a whole
  int column = 0;
  std::string message;
  // "file:line:column: error: message" (or "file: error: message" without a position).
  std::string ToString() const;
};

struct SpecOptions {
  // The configured limit on grid size (before deduplication).
  int64_t max_jobs = kDefaultMaxJobs;
  // Relative model and dataset paths resolve against this folder; "" = the current one.
  std::string base_dir;
};

struct ModelEntry {
  ModelRef ref;    // path made absolute, identity filled in
  ModelInfo info;  // shape and weight bytes for the estimates
};

// One method entry of the spec expanded over its phase and parameter lists: a method
// with every parameter resolved except, when `method.compression` is set, the budget
// parameters, which are derived per sequence length at expansion.
struct MethodVariant {
  MethodChoice method;
  PhaseSet phases = PhaseSet::Both();  // where it runs; dense fills the other phase
  int entry = 0;                       // index of the spec's method entry
  int line = 0, column = 0;            // of the entry in the spec file (1-based; 0: unknown)
};

struct GridAxis {
  std::string name;  // "models", "sequence_lengths", "methods", "tasks", "seeds"
  int64_t size = 0;
  std::string detail;  // e.g. "dense 1, vertical_slash 4 (compression 4)"
};

struct SweepSpec {
  std::string name;
  std::string source;  // the file it came from
  std::vector<ModelEntry> models;
  std::vector<int64_t> sequence_lengths;
  std::vector<MethodVariant> methods;
  std::vector<TaskChoice> tasks;  // expanded over task parameter lists, paths resolved
  std::vector<uint64_t> seeds;
  GenerationSettings generation;
  int64_t max_jobs = kDefaultMaxJobs;  // the effective limit
  std::vector<GridAxis> axes;
  int64_t grid_size = 0;  // product of the axes, before deduplication
};

// Parses and validates `yaml_text`; `filename` is used in error locations. On failure
// returns InvalidArgument whose message lists every error, one
// "file:line:column: error: message" per line, and appends them to `errors` if given.
absl::StatusOr<SweepSpec> ParseSweepSpec(absl::string_view yaml_text, absl::string_view filename,
                                         const SpecOptions& options,
                                         std::vector<SpecError>* errors = nullptr);

// Applies command-line overrides "key=value" to the spec text: `key` is a top-level key
// (`lengths` is accepted for sequence_lengths) or a dotted path into a map
// (generation.max_new_tokens); `value` is YAML (4096, [4096, 8192], [ruler_niah],
// "{name: ruler_niah, samples: 8}") and replaces what the spec had there. Returns the
// resulting YAML text, which begins with a comment listing the overrides (what the
// sweep records). The text is unchanged when `overrides` is empty. InvalidArgument,
// naming the override, for a missing '=', an unknown key (with "did you mean") or a
// value that is not YAML; the spec itself is validated later by ParseSweepSpec.
absl::StatusOr<std::string> ApplySpecOverrides(absl::string_view yaml_text,
                                               const std::vector<std::string>& overrides);

// Reads `path` and parses it as above; NotFound if it cannot be read.
absl::StatusOr<SweepSpec> LoadSweepSpec(const std::string& path, const SpecOptions& options,
                                        std::vector<SpecError>* errors = nullptr);

struct ExpandStats {
  int64_t grid_size = 0;   // grid points visited
  int64_t duplicates = 0;  // points whose key equalled an earlier one (dropped)
};

// The sweep's jobs in grid order (models, lengths, methods, tasks, seeds: the last varies
// fastest), with budgets mapped from compression targets, keys, memory and cost estimates
// filled in, and duplicates (equal keys) dropped keeping the first. Prefill methods pair
// with dense decode, decode methods with dense prefill, `phase: both` uses the method in
// both phases.
absl::StatusOr<std::vector<JobSpec>> ExpandSweep(const SweepSpec& spec,
                                                 ExpandStats* stats = nullptr);

}  // namespace sf

#endif  // SF_COMMON_SPEC_H_
