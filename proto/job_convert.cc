#include "proto/job_convert.h"

#include <type_traits>

namespace sf {
namespace {

v1::ParamValue ValueToProto(const ParamValue& value) {
  v1::ParamValue out;
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, int64_t>) {
          out.set_int_value(v);
        } else if constexpr (std::is_same_v<T, double>) {
          out.set_double_value(v);
        } else if constexpr (std::is_same_v<T, bool>) {
          out.set_bool_value(v);
        } else {
          out.set_string_value(v);
        }
      },
      value);
  return out;
}

ParamValue ValueFromProto(const v1::ParamValue& value) {
  switch (value.value_case()) {
    case v1::ParamValue::kDoubleValue:
      return value.double_value();
    case v1::ParamValue::kBoolValue:
      return value.bool_value();
    case v1::ParamValue::kStringValue:
      return value.string_value();
    case v1::ParamValue::kIntValue:
    case v1::ParamValue::VALUE_NOT_SET:
      break;
  }
  return value.int_value();
}

void ParamsToProto(const ParamMap& params,
                   google::protobuf::Map<std::string, v1::ParamValue>* out) {
  for (const auto& [name, value] : params) (*out)[name] = ValueToProto(value);
}

ParamMap ParamsFromProto(const google::protobuf::Map<std::string, v1::ParamValue>& params) {
  ParamMap out;
  for (const auto& [name, value] : params) out[name] = ValueFromProto(value);
  return out;
}

void MethodToProto(const MethodChoice& method, v1::MethodChoice* out) {
  out->set_name(method.name);
  ParamsToProto(method.params, out->mutable_params());
  if (method.compression) out->set_compression(*method.compression);
}

MethodChoice MethodFromProto(const v1::MethodChoice& method) {
  MethodChoice out;
  out.name = method.name();
  out.params = ParamsFromProto(method.params());
  if (method.has_compression()) out.compression = method.compression();
  return out;
}

}  // namespace

v1::JobSpec JobSpecToProto(const JobSpec& job) {
  v1::JobSpec out;
  auto* model = out.mutable_model();
  model->set_name(job.model.name);
  model->set_path(job.model.path);
  model->set_identity(job.model.identity);
  model->set_gpus(job.model.gpus);
  out.set_sequence_length(job.sequence_length);
  MethodToProto(job.prefill, out.mutable_prefill());
  MethodToProto(job.decode, out.mutable_decode());
  auto* task = out.mutable_task();
  task->set_name(job.task.name);
  ParamsToProto(job.task.params, task->mutable_params());
  task->set_samples(job.task.samples);
  out.set_seed(job.seed);
  out.mutable_generation()->set_max_new_tokens(job.generation.max_new_tokens);
  out.mutable_generation()->set_greedy(job.generation.greedy);
  out.set_key(job.key);
  out.set_memory_bytes(job.memory_bytes);
  out.set_cost(job.cost);
  if (job.gpu_memory) *out.mutable_gpu_memory() = GpuMemoryProfileToProto(*job.gpu_memory);
  return out;
}

v1::GpuMemoryProfile GpuMemoryProfileToProto(const model::LayerMemoryProfile& profile) {
  v1::GpuMemoryProfile g;
  g.set_layers(profile.layers);
  g.set_per_layer_bytes(profile.per_layer_bytes);
  g.set_first_stage_bytes(profile.first_stage_bytes);
  g.set_last_stage_bytes(profile.last_stage_bytes);
  g.set_per_stage_bytes(profile.per_stage_bytes);
  g.set_shared_end_bytes(profile.shared_end_bytes);
  return g;
}

JobSpec JobSpecFromProto(const v1::JobSpec& job) {
  JobSpec out;
  out.model.name = job.model().name();
  out.model.path = job.model().path();
  out.model.identity = job.model().identity();
  out.model.gpus = job.model().gpus();
  out.sequence_length = job.sequence_length();
  out.prefill = MethodFromProto(job.prefill());
  out.decode = MethodFromProto(job.decode());
  out.task.name = job.task().name();
  out.task.params = ParamsFromProto(job.task().params());
  out.task.samples = job.task().samples();
  out.seed = job.seed();
  out.generation.max_new_tokens = job.generation().max_new_tokens();
  out.generation.greedy = job.generation().greedy();
  out.key = job.key();
  out.memory_bytes = job.memory_bytes();
  out.cost = job.cost();
  if (job.has_gpu_memory()) {
    const v1::GpuMemoryProfile& g = job.gpu_memory();
    out.gpu_memory = model::LayerMemoryProfile{.layers = g.layers(),
                                               .per_layer_bytes = g.per_layer_bytes(),
                                               .first_stage_bytes = g.first_stage_bytes(),
                                               .last_stage_bytes = g.last_stage_bytes(),
                                               .per_stage_bytes = g.per_stage_bytes(),
                                               .shared_end_bytes = g.shared_end_bytes()};
  }
  return out;
}

}  // namespace sf
