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
#include "absl/strings/str_replace.h"
#include "cli/sweep_ops.h"
#include "common/model_config.h"
#include "common/status.h"
#include "coordinator/query.h"
#include "methods/registry.h"
#include "proto/model_shape_convert.h"
#include "sf/v1/job.pb.h"

namespace sf::cli {
namespace {

constexpr int64_t kJobStateDone = 3;  // sf.v1.JOB_STATE_DONE
constexpr int64_t kSamplePage = 50000;

int64_t IntAt(const std::vector<Cell>& row, size_t i) {
  if (const auto* v = std::get_if<int64_t>(&row[i])) return *v;
  if (const auto* d = std::get_if<double>(&row[i])) return static_cast<int64_t>(*d);
  return 0;
}
double DoubleAt(const std::vector<Cell>& row, size_t i) {
  if (const auto* v = std::get_if<double>(&row[i])) return *v;
  if (const auto* n = std::get_if<int64_t>(&row[i])) return static_cast<double>(*n);
  return 0.0;
}
std::optional<double> OptDoubleAt(const std::vector<Cell>& row, size_t i) {
  if (std::holds_alternative<std::monostate>(row[i])) return std::nullopt;
  return DoubleAt(row, i);
}
std::string TextAt(const std::vector<Cell>& row, size_t i) {
  if (const auto* s = std::get_if<std::string>(&row[i])) return *s;
  return "";
}

std::string SqlQuote(const std::string& text) {
  return absl::StrCat("'", absl::StrReplaceAll(text, {{"'", "''"}}), "'");
}

struct JobRow {
  int64_t id = 0;
  std::string key;
  std::string model;
  std::string model_identity;
  std::string model_path;
  int64_t seq_len = 0;
  std::string prefill, decode, task;
  std::optional<double> prefill_c, decode_c;
  int64_t state = 0;
  bool has_result = false;
  double nominal = 1.0, measured = 0.0;
  double flops_prefill = 0, flops_decode = 0, flops_indexing = 0;
  int64_t n = 0, samples_evaluated = 0;
  std::optional<v1::ModelShape> shape;  // as recorded with the result
};

std::string Describe(const JobRow& j) {
  return absl::StrCat("job ", j.key.substr(0, 12), " (", j.model, ", ", j.task, ", L=", j.seq_len,
                      ", prefill ", j.prefill, ", decode ", j.decode, ")");
}

// The architecture in a model folder's config.json, in the form a result records it, for
// results recorded before the worker stored it.
absl::StatusOr<v1::ModelShape> ShapeFromConfig(const std::string& path) {
  SF_ASSIGN_OR_RETURN(model::ModelConfig c, model::LoadModelConfig(path));
  return ModelShapeToProto(c);
}

absl::StatusOr<std::string> ListSweeps(const SqlSource& sql) {
  SF_ASSIGN_OR_RETURN(Table t, sql("SELECT id, name, n_total, n_done FROM sweeps ORDER BY id DESC "
                                   "LIMIT 20"));
  if (t.rows.empty()) return std::string("the database has no sweeps");
  std::vector<std::string> names;
  for (const auto& row : t.rows) {
    names.push_back(absl::StrCat(IntAt(row, 0), " '", TextAt(row, 1), "' (", IntAt(row, 3), " of ",
                                 IntAt(row, 2), " jobs done)"));
  }
  return absl::StrCat("existing sweeps: ", absl::StrJoin(names, ", "));
}

}  // namespace

absl::StatusOr<SqlSource> DatabaseSource(const std::string& db_path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(db_path, ec)) {
    return absl::NotFoundError(absl::StrCat(
        "no results database '", db_path,
        "': pass --db FILE (the file `sfctl run` or sf-coordinator --db wrote) or --coordinator"));
  }
  return SqlSource([db_path](const std::string& sql) -> absl::StatusOr<Table> {
    coordinator::QueryLimits limits;
    limits.max_rows = kSamplePage + 1;
    limits.timeout = absl::Minutes(10);
    limits.batch_rows = 5000;
    Table table;
    SF_RETURN_IF_ERROR(Annotate(coordinator::RunReadOnlyQuery(db_path, sql, limits,
                                                              [&table](v1::QueryResponse& r) {
                                                                AppendQueryResponse(r, /*render_blobs=*/false, &table);
                                                                return true;
                                                              }),
                                absl::StrCat("reading ", db_path)));
    return table;
  });
}

SqlSource CoordinatorSource(Remote* remote) {
  return [remote](const std::string& sql) -> absl::StatusOr<Table> {
    v1::QueryRequest request;
    request.set_sql(sql);
    request.set_max_rows(kSamplePage + 1);
    request.set_timeout_ms(600000);
    grpc::ClientContext context;
    remote->Prepare(&context, absl::Seconds(600));
    auto reader = remote->stub().Query(&context, request);
    Table table;
    v1::QueryResponse response;
    while (reader->Read(&response)) AppendQueryResponse(response, /*render_blobs=*/false, &table);
    grpc::Status status = reader->Finish();
    if (!status.ok()) return remote->Error(status, "Query");
    return table;
  };
}

absl::StatusOr<LoadedSweep> LoadSweep(const SqlSource& sql, const std::string& id_or_name) {
  LoadedSweep out;
  const bool numeric =
      !id_or_name.empty() && std::all_of(id_or_name.begin(), id_or_name.end(),
                                         [](char c) { return absl::ascii_isdigit(c); });
  SF_ASSIGN_OR_RETURN(
      Table sweep,
      sql(absl::StrCat("SELECT id, name, n_total, n_done, n_queued, n_leased, n_failed, "
                       "n_cancelled FROM sweeps WHERE ",
                       numeric ? absl::StrCat("id = ", id_or_name, " OR ") : "",
                       "name = ", SqlQuote(id_or_name), " ORDER BY id LIMIT 1")));
  if (sweep.rows.empty()) {
    SF_ASSIGN_OR_RETURN(std::string existing, ListSweeps(sql));
    return absl::NotFoundError(absl::StrCat("no sweep '", id_or_name, "'; ", existing));
  }
  const auto& s = sweep.rows[0];
  out.sweep_id = IntAt(s, 0);
  out.sweep_name = TextAt(s, 1);
  out.jobs_total = IntAt(s, 2);
  out.jobs_done = IntAt(s, 3);
  if (out.jobs_done == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sweep ", out.sweep_id, " '", out.sweep_name, "' has no finished jobs yet (", IntAt(s, 4),
        " queued, ", IntAt(s, 5), " running, ", IntAt(s, 6), " failed, ", IntAt(s, 7),
        " cancelled of ", out.jobs_total, "); wait for workers (sfctl watch) and analyze again"));
  }

  // Databases before schema migration 2 have no recorded architecture.
  SF_ASSIGN_OR_RETURN(Table version, sql("SELECT COALESCE(MAX(version), 0) FROM schema_version"));
  const bool has_shape = !version.rows.empty() && IntAt(version.rows[0], 0) >= 2;
  std::string columns =
      "j.id, j.key, j.model_name, j.model_identity, j.spec, j.sequence_length, "
      "j.prefill_method, j.prefill_compression, j.decode_method, j.decode_compression, j.task, "
      "j.state, r.job_id, r.nominal_compression, r.measured_compression, r.flops_prefill, "
      "r.flops_decode, r.flops_indexing, r.n";
  if (has_shape) {
    absl::StrAppend(&columns,
                    ", r.samples_evaluated, r.model_hidden, r.model_layers, r.model_heads, "
                    "r.model_kv_heads, r.model_head_dim, r.model_intermediate, r.model_vocab, "
                    "r.model_qkv_bias, r.model_tied_embeddings, r.model_params, "
                    "r.model_random_weights");
  }
  std::vector<JobRow> jobs;
  int64_t after = 0;
  while (true) {
    SF_ASSIGN_OR_RETURN(
        Table t, sql(absl::StrCat("SELECT ", columns,
                                  " FROM sweep_jobs s JOIN jobs j ON j.id = s.job_id LEFT JOIN "
                                  "results r ON r.job_id = j.id WHERE s.sweep_id = ",
                                  out.sweep_id, " AND j.id > ", after, " ORDER BY j.id LIMIT ",
                                  kSamplePage)));
    for (const auto& row : t.rows) {
      JobRow j;
      j.id = IntAt(row, 0);
      j.key = TextAt(row, 1);
      j.model = TextAt(row, 2);
      j.model_identity = TextAt(row, 3);
      v1::JobSpec spec;
      if (spec.ParseFromString(TextAt(row, 4))) j.model_path = spec.model().path();
      j.seq_len = IntAt(row, 5);
      j.prefill = TextAt(row, 6);
      j.prefill_c = OptDoubleAt(row, 7);
      j.decode = TextAt(row, 8);
      j.decode_c = OptDoubleAt(row, 9);
      j.task = TextAt(row, 10);
      j.state = IntAt(row, 11);
      j.has_result = !std::holds_alternative<std::monostate>(row[12]);
      if (j.has_result) {
        j.nominal = DoubleAt(row, 13);
        j.measured = DoubleAt(row, 14);
        j.flops_prefill = DoubleAt(row, 15);
        j.flops_decode = DoubleAt(row, 16);
        j.flops_indexing = DoubleAt(row, 17);
        j.n = IntAt(row, 18);
        if (has_shape) {
          j.samples_evaluated = IntAt(row, 19);
          if (IntAt(row, 20) > 0) {
            v1::ModelShape m;
            m.set_hidden(IntAt(row, 20));
            m.set_layers(IntAt(row, 21));
            m.set_heads(IntAt(row, 22));
            m.set_kv_heads(IntAt(row, 23));
            m.set_head_dim(IntAt(row, 24));
            m.set_intermediate(IntAt(row, 25));
            m.set_vocab(IntAt(row, 26));
            m.set_qkv_bias(IntAt(row, 27) != 0);
            m.set_tied_embeddings(IntAt(row, 28) != 0);
            m.set_params(IntAt(row, 29));
            m.set_random_weights(IntAt(row, 30) != 0);
            j.shape = m;
          }
        }
      }
      jobs.push_back(std::move(j));
    }
    if (static_cast<int64_t>(t.rows.size()) < kSamplePage) break;
    after = jobs.back().id;
  }

  // Per-sample scores and output tokens of the done jobs, paged by (job, index).
  std::map<int64_t, std::vector<analysis::SampleScore>> samples;
  std::map<int64_t, std::pair<double, int64_t>> output_tokens;  // sum, count
  int64_t after_job = 0, after_idx = -1;
  while (true) {
    SF_ASSIGN_OR_RETURN(
        Table t, sql(absl::StrCat("SELECT m.job_id, m.idx, m.score, m.output_tokens FROM samples m "
                                  "JOIN sweep_jobs s ON s.job_id = m.job_id JOIN jobs j ON j.id = "
                                  "m.job_id WHERE s.sweep_id = ",
                                  out.sweep_id, " AND j.state = ", kJobStateDone,
                                  " AND (m.job_id, m.idx) > (", after_job, ", ", after_idx,
                                  ") ORDER BY m.job_id, m.idx LIMIT ", kSamplePage)));
    for (const auto& row : t.rows) {
      after_job = IntAt(row, 0);
      after_idx = IntAt(row, 1);
      samples[after_job].push_back({after_idx, DoubleAt(row, 2)});
      auto& tokens = output_tokens[after_job];
      tokens.first += DoubleAt(row, 3);
      ++tokens.second;
    }
    if (static_cast<int64_t>(t.rows.size()) < kSamplePage) break;
  }

  // Each model's architecture: recorded with any of its results, else its config.json.
  std::map<std::string, v1::ModelShape> shapes;  // by model name
  for (const JobRow& j : jobs) {
    if (j.shape && !shapes.count(j.model)) shapes[j.model] = *j.shape;
  }
  std::map<std::string, std::string> shape_errors;
  for (const JobRow& j : jobs) {
    if (shapes.count(j.model) || shape_errors.count(j.model)) continue;
    absl::StatusOr<v1::ModelShape> from_config = ShapeFromConfig(j.model_path);
    if (from_config.ok()) {
      shapes[j.model] = *from_config;
      out.warnings.push_back(absl::StrCat("model '", j.model, "': architecture read from ",
                                          j.model_path,
                                          "/config.json (its results do not record it)"));
    } else {
      shape_errors[j.model] = std::string(from_config.status().message());
    }
  }

  std::set<std::string> random_models;
  int64_t skipped_unfinished = 0;
  for (const JobRow& j : jobs) {
    const bool done = j.state == kJobStateDone && j.has_result;
    const std::string baseline = BaselineMethod().name;
    const bool sparse_prefill = j.prefill != baseline;
    const bool sparse_decode = j.decode != baseline;
    if (sparse_prefill && sparse_decode) {
      out.warnings.push_back(absl::StrCat(Describe(j),
                                          " is left out: both phases are sparse, and the analysis "
                                          "studies one sparse phase against dense at a time"));
      continue;
    }
    auto shape = shapes.find(j.model);
    if (shape == shapes.end()) {
      if (!done) {
        ++skipped_unfinished;
        continue;
      }
      return absl::FailedPreconditionError(absl::StrCat(
          "model '", j.model, "' of ", Describe(j),
          " has no recorded architecture (results written before schema 2) and its "
          "config.json cannot be read: ",
          shape_errors[j.model],
          ". Run analyze where the model folder exists, or re-run the sweep with a current "
          "worker (sfctl run --force / submit --force)"));
    }
    analysis::ResultPoint p;
    p.model = j.model;
    p.shape = ModelShapeFromProto(shape->second);
    p.params = static_cast<double>(shape->second.params());
    if (shape->second.random_weights()) random_models.insert(j.model);
    p.task = j.task;
    p.seq_len = j.seq_len;
    if (sparse_prefill) {
      p.method = j.prefill;
      p.phase = "prefill";
    } else if (sparse_decode) {
      p.method = j.decode;
      p.phase = "decode";
    } else {
      p.method = baseline;
    }
    const std::optional<double> asked = sparse_prefill ? j.prefill_c : j.decode_c;
    p.nominal_compression = p.is_dense() ? 1.0 : asked.value_or(done ? j.nominal : 1.0);
    if (done) {
      // The worker measures compression over all attention a job computed, prefill and
      // decode together; for a decode method the dense prefill dominates (about 1.00), so
      // only prefill methods use it and decode methods keep their nominal compression.
      p.measured_compression = p.phase == "prefill" ? j.measured : 0.0;
      auto it = samples.find(j.id);
      if (it != samples.end()) p.samples = std::move(it->second);
      // The worker records FLOPs summed over the samples of its attempt; the analysis
      // wants them per sample.
      const int64_t covered = j.samples_evaluated > 0 ? j.samples_evaluated : j.n;
      if (covered > 0) {
        p.flops_prefill = j.flops_prefill / static_cast<double>(covered);
        p.flops_decode = j.flops_decode / static_cast<double>(covered);
        p.flops_indexing = j.flops_indexing / static_cast<double>(covered);
      }
      auto tokens = output_tokens.find(j.id);
      if (tokens != output_tokens.end() && tokens->second.second > 0) {
        p.decode_tokens = static_cast<int64_t>(
            std::llround(tokens->second.first / static_cast<double>(tokens->second.second)));
      }
    }
    out.input.points.push_back(std::move(p));
  }
  if (skipped_unfinished > 0) {
    out.warnings.push_back(absl::StrCat(
        skipped_unfinished,
        " unfinished jobs are not shown as missing: their models' architecture is unknown here"));
  }
  out.random_weight_models.assign(random_models.begin(), random_models.end());
  if (!random_models.empty()) {
    out.input.caveat = absl::StrCat(
        "The models ", absl::StrJoin(out.random_weight_models, ", "),
        " have random weights (made by sfctl make-tiny-model): their scores carry no meaning. "
        "This report shows that the pipeline works, not findings about sparse attention.");
  }
  return out;
}

}  // namespace sf::cli
