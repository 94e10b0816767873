#include "cli/analyze_loader.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/model_config.h"
#include "common/status.h"
#include "methods/registry.h"
#include "proto/model_shape_convert.h"
#include "sf/v1/coordinator.grpc.pb.h"

namespace sf::cli {
namespace {

// A model's architecture and whether its weights are random (sfctl make-tiny-model).
struct ModelFacts {
  analysis::ModelShape shape;
  double params = 0.0;  // N as recorded (ResultPoint::params)
  bool random_weights = false;
};

bool IsDone(const v1::ResultRow& row) {
  return row.state() == v1::JOB_STATE_DONE && row.has_result();
}

std::string Describe(const v1::ResultRow& row) {
  const v1::JobSpec& j = row.job();
  return absl::StrCat("job ", j.key().substr(0, 12), " (", j.model().name(), ", ", j.task().name(),
                      ", L=", j.sequence_length(), ", prefill ", j.prefill().name(), ", decode ",
                      j.decode().name(), ")");
}

ModelFacts FromRecorded(const v1::ModelShape& m) {
  ModelFacts facts;
  facts.shape = ModelShapeFromProto(m);
  facts.params = static_cast<double>(m.params());
  facts.random_weights = m.random_weights();
  return facts;
}

// The architecture in a model folder's config.json, for results recorded before the
// worker stored it.
absl::StatusOr<ModelFacts> FromConfig(const std::string& path) {
  SF_ASSIGN_OR_RETURN(model::ModelConfig c, model::LoadModelConfig(path));
  return FromRecorded(ModelShapeToProto(c));
}

// Every job of the sweep in job order, done or not, with the samples of each.
absl::StatusOr<std::vector<v1::ResultRow>> ReadJobs(ResultsSource& source, int64_t sweep_id) {
  v1::ResultsRequest request;
  request.set_sweep_id(sweep_id);
  request.set_include_unfinished(true);
  request.set_include_samples(true);
  std::vector<v1::ResultRow> rows;
  SF_RETURN_IF_ERROR(source.Results(request, [&rows](v1::ResultsResponse& page) {
    for (v1::ResultRow& row : *page.mutable_rows()) rows.push_back(std::move(row));
    return true;
  }));
  return rows;
}

// Each model's architecture: recorded with any of its results, else its config.json
// (a warning says so). Models whose config.json cannot be read either are in `errors`.
std::map<std::string, ModelFacts> ResolveModels(const std::vector<v1::ResultRow>& rows,
                                                std::map<std::string, std::string>* errors,
                                                std::vector<std::string>* warnings) {
  std::map<std::string, ModelFacts> models;
  for (const v1::ResultRow& row : rows) {
    const std::string& model = row.job().model().name();
    if (row.has_result() && row.result().model_shape().hidden() > 0 && !models.count(model)) {
      models[model] = FromRecorded(row.result().model_shape());
    }
  }
  for (const v1::ResultRow& row : rows) {
    const std::string& model = row.job().model().name();
    if (models.count(model) || errors->count(model)) continue;
    const std::string& path = row.job().model().path();
    absl::StatusOr<ModelFacts> from_config = FromConfig(path);
    if (from_config.ok()) {
      models[model] = *from_config;
      warnings->push_back(absl::StrCat("model '", model, "': architecture read from ", path,
                                       "/config.json (its results do not record it)"));
    } else {
      (*errors)[model] = std::string(from_config.status().message());
    }
  }
  return models;
}

std::string ParamText(const v1::ParamValue& v) {
  switch (v.value_case()) {
    case v1::ParamValue::kIntValue:
      return absl::StrCat(v.int_value());
    case v1::ParamValue::kDoubleValue:
      return absl::StrCat(v.double_value());
    case v1::ParamValue::kBoolValue:
      return v.bool_value() ? "true" : "false";
    case v1::ParamValue::kStringValue:
      return v.string_value();
    default:
      return "";
  }
}

using TaskParams = std::map<std::string, std::string>;  // name -> value, sorted

TaskParams ParamsOf(const v1::TaskChoice& task) {
  TaskParams params;
  for (const auto& [name, value] : task.params()) params[name] = ParamText(value);
  return params;
}

// The analysis name of each (task, parameters) the sweep ran: the task's name, followed,
// when the sweep runs that task with several parameter sets (ruler_niah with 1 and 4
// keys), by the parameters that tell them apart: "ruler_niah(num_queries=1)". Without
// it the analysis would pool the variants' points as one task.
std::map<std::pair<std::string, TaskParams>, std::string> TaskLabels(
    const std::vector<v1::ResultRow>& rows) {
  std::map<std::string, std::set<TaskParams>> variants;
  for (const v1::ResultRow& row : rows) {
    variants[row.job().task().name()].insert(ParamsOf(row.job().task()));
  }
  std::map<std::pair<std::string, TaskParams>, std::string> labels;
  for (const auto& [name, sets] : variants) {
    std::set<std::string> differing;
    for (const TaskParams& a : sets) {
      for (const auto& [key, value] : a) {
        for (const TaskParams& b : sets) {
          auto it = b.find(key);
          if (it == b.end() || it->second != value) differing.insert(key);
        }
      }
    }
    for (const TaskParams& params : sets) {
      std::vector<std::string> parts;
      for (const std::string& key : differing) {
        auto it = params.find(key);
        parts.push_back(absl::StrCat(key, "=", it == params.end() ? "-" : it->second));
      }
      labels[{name, params}] =
          parts.empty() ? name : absl::StrCat(name, "(", absl::StrJoin(parts, ","), ")");
    }
  }
  return labels;
}

// The analysis point of one job whose model is known, under the task name `task`; a job
// not done yet gives a point without samples (listed as missing).
analysis::ResultPoint MakePoint(const v1::ResultRow& row, const ModelFacts& model,
                                const std::string& task) {
  const v1::JobSpec& j = row.job();
  const bool done = IsDone(row);
  const bool sparse_prefill = j.prefill().name() != BaselineMethod().name;
  const bool sparse_decode = j.decode().name() != BaselineMethod().name;
  analysis::ResultPoint p;
  p.model = j.model().name();
  p.shape = model.shape;
  p.params = model.params;
  p.task = task;
  p.seq_len = j.sequence_length();
  if (sparse_prefill) {
    p.method = j.prefill().name();
    p.phase = "prefill";
  } else if (sparse_decode) {
    p.method = j.decode().name();
    p.phase = "decode";
  } else {
    p.method = BaselineMethod().name;
  }
  const v1::MethodChoice& sparse = sparse_prefill ? j.prefill() : j.decode();
  const double fallback = done ? row.result().nominal_compression() : 1.0;
  p.nominal_compression =
      p.is_dense() ? 1.0 : (sparse.has_compression() ? sparse.compression() : fallback);
  if (!done) return p;
  const v1::JobResult& r = row.result();
  // The worker measures compression over all attention a job computed, prefill and
  // decode together; for a decode method the dense prefill dominates (about 1.00), so
  // only prefill methods use it and decode methods keep their nominal compression.
  p.measured_compression = p.phase == "prefill" ? r.measured_compression() : 0.0;
  // A method whose budget adapts to the data (flexprefill's gamma, xattention's threshold)
  // has no nominal compression, and the worker records 1: its measured compression, to
  // two decimals, stands in, so that its settings stay apart (a spec's three gammas are
  // three points, not one average) and each is tested and plotted where it ran.
  if (!p.is_dense() && !sparse.has_compression() && p.nominal_compression == 1.0 &&
      p.measured_compression > 1.0) {
    p.nominal_compression = std::round(p.measured_compression * 100.0) / 100.0;
    p.compression_measured = true;
  }
  double output_tokens = 0;
  for (const v1::SampleResult& s : row.samples()) {
    p.samples.push_back({s.index(), s.score()});
    output_tokens += static_cast<double>(s.output_tokens());
  }
  // The worker records FLOPs summed over the samples of its attempt; the analysis
  // wants them per sample.
  const int64_t covered = r.samples_evaluated() > 0 ? r.samples_evaluated() : r.n();
  if (covered > 0) {
    p.flops_prefill = r.flops_prefill() / static_cast<double>(covered);
    p.flops_decode = r.flops_decode() / static_cast<double>(covered);
    p.flops_indexing = r.flops_indexing() / static_cast<double>(covered);
    p.prefill_seconds = r.prefill_seconds() / static_cast<double>(covered);
    p.decode_seconds = r.decode_seconds() / static_cast<double>(covered);
    p.estimation_seconds = r.estimation_seconds() / static_cast<double>(covered);
  }
  if (p.prefill_seconds > 0 || p.decode_seconds > 0) {
    p.device = r.gpu_name().empty() ? "cpu" : r.gpu_name();
  }
  if (!row.samples().empty()) {
    p.decode_tokens =
        static_cast<int64_t>(std::llround(output_tokens / static_cast<double>(row.samples_size())));
  }
  return p;
}

}  // namespace

absl::StatusOr<LoadedSweep> LoadSweep(ResultsSource& source, const std::string& id_or_name) {
  SF_ASSIGN_OR_RETURN(v1::Sweep sweep, FindSweep(source, id_or_name));
  LoadedSweep out;
  out.sweep_id = sweep.id();
  out.sweep_name = sweep.name();
  out.jobs_total = sweep.counts().total();
  out.jobs_done = sweep.counts().done();
  if (out.jobs_done == 0) {
    const v1::SweepCounts& c = sweep.counts();
    const std::string counts =
        absl::StrCat(c.queued(), " queued, ", c.leased(), " running, ", c.failed(), " failed, ",
                     c.cancelled(), " cancelled of ", out.jobs_total);
    if (c.queued() + c.leased() > 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("sweep ", out.sweep_id, " '", out.sweep_name, "' has no finished jobs yet (",
                       counts, "); wait for workers (sfctl watch) and analyze again"));
    }
    const std::string next =
        c.failed() > 0
            ? absl::StrCat("; `sfctl status ", out.sweep_id,
                           "` shows why jobs failed and `sfctl job KEY` one job's attempts; fix "
                           "the cause, then `sfctl retry ",
                           out.sweep_id, "`")
            : absl::StrCat("; `sfctl retry ", out.sweep_id,
                           " --include-cancelled` re-queues its jobs");
    return absl::FailedPreconditionError(absl::StrCat("sweep ", out.sweep_id, " '", out.sweep_name,
                                                      "' has no done job (", counts, ")", next));
  }
  SF_ASSIGN_OR_RETURN(std::vector<v1::ResultRow> rows, ReadJobs(source, out.sweep_id));
  std::map<std::string, std::string> model_errors;
  const std::map<std::string, ModelFacts> models =
      ResolveModels(rows, &model_errors, &out.warnings);

  const auto task_labels = TaskLabels(rows);
  std::set<std::string> random_models;
  int64_t skipped_unfinished = 0;
  for (const v1::ResultRow& row : rows) {
    const v1::JobSpec& j = row.job();
    if (j.prefill().name() != BaselineMethod().name && j.decode().name() != BaselineMethod().name) {
      out.warnings.push_back(absl::StrCat(Describe(row),
                                          " is left out: both phases are sparse, and the analysis "
                                          "studies one sparse phase against dense at a time"));
      continue;
    }
    auto model = models.find(j.model().name());
    if (model == models.end()) {
      if (!IsDone(row)) {
        ++skipped_unfinished;
        continue;
      }
      return absl::FailedPreconditionError(absl::StrCat(
          "model '", j.model().name(), "' of ", Describe(row),
          " has no recorded architecture (results written before schema 2) and its "
          "config.json cannot be read: ",
          model_errors[j.model().name()],
          ". Run analyze where the model folder exists, or re-run the sweep with a current "
          "worker (sfctl run --force / submit --force)"));
    }
    if (model->second.random_weights) random_models.insert(j.model().name());
    out.input.points.push_back(
        MakePoint(row, model->second, task_labels.at({j.task().name(), ParamsOf(j.task())})));
  }
  if (skipped_unfinished > 0) {
    out.warnings.push_back(absl::StrCat(
        skipped_unfinished,
        " unfinished jobs are not shown as missing: their models' architecture is unknown here"));
  }
  out.random_weight_models.assign(random_models.begin(), random_models.end());
  if (!random_models.empty()) {
    out.input.figure_caveat =
        absl::StrCat("random weights (", absl::StrJoin(out.random_weight_models, ", "),
                     "): these scores carry no meaning");
    out.input.caveat = absl::StrCat(
        "The models ", absl::StrJoin(out.random_weight_models, ", "),
        " have random weights (made by sfctl make-tiny-model): their scores carry no meaning. "
        "This report shows that the pipeline works, not findings about sparse attention.");
  }
  return out;
}

}  // namespace sf::cli
