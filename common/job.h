// A job: one grid point of a sweep (model, sequence length, prefill and decode
// methods with parameters, task with parameters, seed, generation settings). The
// sweep spec expands into jobs (common/spec.h); the coordinator stores and leases
// them; workers evaluate them. Its key is a hash of everything that can change its
// result, so equal keys mean reusable results.
#ifndef SF_COMMON_JOB_H_
#define SF_COMMON_JOB_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>

#include "common/layer_plan.h"

namespace sf {

// A parameter value as written in a spec, typed by the catalog.
using ParamValue = std::variant<int64_t, double, bool, std::string>;
// Ordered by name, so that iteration order is canonical.
using ParamMap = std::map<std::string, ParamValue>;

struct ModelRef {
  std::string name;  // the spec's short name, e.g. "qwen2.5-7b"
  std::string path;  // a Hugging Face model folder
  // Identity for job keys: hash of config.json plus weight file names and sizes
  // (not a checksum of the weights).
  std::string identity;
  int gpus = 0;  // devices one worker needs for this model (0 = CPU is fine)
};

struct MethodChoice {
  std::string name = "dense";  // a name from methods/registry.h
  // Every parameter resolved: defaults filled in; the budget parameter set either
  // natively or derived from `compression` for this job's sequence length.
  ParamMap params;
  // The compression target the spec asked for (1 / (1 - sparsity)), if it gave one.
  std::optional<double> compression;
};

struct TaskChoice {
  std::string name;  // e.g. "ruler_niah"
  ParamMap params;   // resolved, dataset paths included
  int32_t samples = 0;
  // Identity of the dataset file named by params["path"] (its size), "" when the task
  // has none; part of the job key so that a replaced dataset is not mistaken for the old.
  std::string data_identity;
};

struct GenerationSettings {
  int32_t max_new_tokens = 0;  // 0 = the task's own default
  bool greedy = true;
};

struct JobSpec {
  ModelRef model;
  int64_t sequence_length = 0;  // target prompt length L in the model's tokens
  MethodChoice prefill;         // attention method during prefill
  MethodChoice decode;          // attention / KV-compression method during decode
  TaskChoice task;
  uint64_t seed = 0;
  GenerationSettings generation;

  // Derived by the spec expansion:
  std::string key;           // canonical job key (hex)
  int64_t memory_bytes = 0;  // estimated peak memory on one worker
  double cost = 0;           // relative run time estimate, for longest-first placement
  // Its GPU memory on the CUDA engine as a layer pipeline places it (common/gpu_memory.h):
  // how many of a worker's GPUs it needs and which workers can hold it at all.
  std::optional<model::LayerMemoryProfile> gpu_memory;
};

}  // namespace sf

#endif  // SF_COMMON_JOB_H_
