#include "coordinator/job_store.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace sf::coordinator {
namespace {

std::optional<double> CompressionOf(const v1::MethodChoice& m) {
  if (m.has_compression()) return m.compression();
  return std::nullopt;
}

Statement& BindOptional(Statement& st, int index, std::optional<double> value) {
  return value ? st.Bind(index, *value) : st.BindNull(index);
}

// The result columns of schema migration 1, then those of migration 2.
constexpr char kResultColumnsV1[] =
    "r.metric, r.mean, r.variance, r.n, r.nominal_compression, r.measured_compression, "
    "r.flops_prefill, r.flops_decode, r.flops_indexing, r.wall_seconds, r.tokens_per_second, "
    "r.worker_id, r.gpu_name, r.engine_version, r.git_commit";
constexpr char kResultShapeColumns[] =
    "r.samples_evaluated, r.model_hidden, r.model_layers, r.model_heads, r.model_kv_heads, "
    "r.model_head_dim, r.model_intermediate, r.model_vocab, r.model_qkv_bias, "
    "r.model_tied_embeddings, r.model_params, r.model_random_weights";
constexpr int kResultShapeColumnCount = 12;
// Migration 3: how the engine ran the job.
constexpr char kResultEngineColumns[] = "r.compute_dtype, r.prefill_attention, r.decode_attention";
constexpr int kResultEngineColumnCount = 3;
// Migration 4: time per phase and the dense attention kernels.
constexpr char kResultTimeColumns[] =
    "r.prefill_seconds, r.decode_seconds, r.estimation_seconds, r.attention_kernels";

}  // namespace

absl::StatusOr<Statement*> StatementCache::Get(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second.get();
  SF_ASSIGN_OR_RETURN(auto stmt, db_->Prepare(sql));
  Statement* raw = stmt.get();
  statements_.emplace(sql, std::move(stmt));
  return raw;
}

v1::Sweep ReadSweepRow(const Statement& st) {
  v1::Sweep sweep;
  sweep.set_id(st.Int(0));
  sweep.set_name(st.Text(1));
  sweep.set_state(static_cast<v1::SweepState>(st.Int(2)));
  sweep.set_priority(static_cast<int32_t>(st.Int(3)));
  sweep.set_created_unix_ms(st.Int(4));
  sweep.set_finished_unix_ms(st.Int(5));
  v1::SweepCounts* c = sweep.mutable_counts();
  c->set_total(st.Int(6));
  c->set_queued(st.Int(7));
  c->set_leased(st.Int(8));
  c->set_done(st.Int(9));
  c->set_failed(st.Int(10));
  c->set_cancelled(st.Int(11));
  c->set_preemptions(st.Int(12));
  c->set_samples_total(st.Int(13));
  c->set_samples_done(st.Int(14));
  return sweep;
}

Statement& BindNewJob(Statement& st, const v1::JobSpec& job, int priority, int max_attempts,
                      int64_t now_ms) {
  std::string blob;
  job.SerializeToString(&blob);
  st.Bind(1, job.key())
      .Bind(2, job.model().name())
      .Bind(3, job.model().identity())
      .Bind(4, job.model().gpus())
      .Bind(5, job.sequence_length())
      .Bind(6, job.prefill().name());
  BindOptional(st, 7, CompressionOf(job.prefill()));
  st.Bind(8, job.decode().name());
  BindOptional(st, 9, CompressionOf(job.decode()));
  return st.Bind(10, job.task().name())
      .Bind(11, job.task().samples())
      .Bind(12, static_cast<int64_t>(job.seed()))
      .Bind(13, job.memory_bytes())
      .Bind(14, job.cost())
      .Bind(15, priority)
      .Bind(16, max_attempts)
      .BindBlob(17, blob)
      .Bind(18, static_cast<int>(v1::JOB_STATE_QUEUED))
      .Bind(19, now_ms)
      .Bind(20, now_ms);
}

Statement& BindSample(Statement& st, int64_t job_id, const v1::SampleResult& s,
                      const std::string& lease_token, int64_t now_ms) {
  return st.Bind(1, job_id)
      .Bind(2, s.index())
      .Bind(3, s.score())
      .Bind(4, s.prediction())
      .Bind(5, s.target())
      .Bind(6, s.input_tokens())
      .Bind(7, s.output_tokens())
      .Bind(8, s.measured_density())
      .Bind(9, s.wall_seconds())
      .Bind(10, lease_token)
      .Bind(11, now_ms);
}

void ReadSampleRow(const Statement& st, bool with_text, v1::SampleResult* s) {
  s->set_index(static_cast<int32_t>(st.Int(0)));
  s->set_score(st.Double(1));
  s->set_input_tokens(st.Int(2));
  s->set_output_tokens(st.Int(3));
  s->set_measured_density(st.Double(4));
  s->set_wall_seconds(st.Double(5));
  if (with_text) {
    s->set_prediction(st.Text(6));
    s->set_target(st.Text(7));
  }
}

Statement& BindResult(Statement& st, int64_t job_id, const v1::JobResult& r, double mean,
                      double variance, int64_t n, const std::string& worker,
                      const std::string& lease_token, int64_t now_ms) {
  return st.Bind(1, job_id)
      .Bind(2, r.metric())
      .Bind(3, mean)
      .Bind(4, variance)
      .Bind(5, n)
      .Bind(6, r.nominal_compression())
      .Bind(7, r.measured_compression())
      .Bind(8, r.flops_prefill())
      .Bind(9, r.flops_decode())
      .Bind(10, r.flops_indexing())
      .Bind(11, r.wall_seconds())
      .Bind(12, r.tokens_per_second())
      .Bind(13, worker)
      .Bind(14, r.gpu_name())
      .Bind(15, r.engine_version())
      .Bind(16, r.git_commit())
      .Bind(17, lease_token)
      .Bind(18, now_ms);
}

Statement& BindResultShape(Statement& st, const v1::JobResult& r, int64_t job_id) {
  const v1::ModelShape& m = r.model_shape();
  return st.Bind(1, std::max<int64_t>(0, r.samples_evaluated()))
      .Bind(2, m.hidden())
      .Bind(3, m.layers())
      .Bind(4, m.heads())
      .Bind(5, m.kv_heads())
      .Bind(6, m.head_dim())
      .Bind(7, m.intermediate())
      .Bind(8, m.vocab())
      .Bind(9, m.qkv_bias() ? 1 : 0)
      .Bind(10, m.tied_embeddings() ? 1 : 0)
      .Bind(11, m.params())
      .Bind(12, m.random_weights() ? 1 : 0)
      .Bind(13, job_id);
}

Statement& BindResultEngine(Statement& st, const v1::JobResult& r, int64_t job_id) {
  return st.Bind(1, r.compute_dtype())
      .Bind(2, r.prefill_attention())
      .Bind(3, r.decode_attention())
      .Bind(4, r.prefill_seconds())
      .Bind(5, r.decode_seconds())
      .Bind(6, r.estimation_seconds())
      .Bind(7, r.attention_kernels())
      .Bind(8, job_id);
}

std::string ResultColumns(int schema_version) {
  std::string columns = kResultColumnsV1;
  if (schema_version >= 2) {
    absl::StrAppend(&columns, ", ", kResultShapeColumns);
  } else {
    for (int i = 0; i < kResultShapeColumnCount; ++i) absl::StrAppend(&columns, ", 0");
  }
  if (schema_version >= 3) {
    absl::StrAppend(&columns, ", ", kResultEngineColumns);
  } else {
    for (int i = 0; i < kResultEngineColumnCount; ++i) absl::StrAppend(&columns, ", ''");
  }
  if (schema_version >= 4) {
    absl::StrAppend(&columns, ", ", kResultTimeColumns);
  } else {
    absl::StrAppend(&columns, ", 0, 0, 0, ''");
  }
  return columns;
}

void ReadResultRow(const Statement& st, int first, v1::JobResult* r) {
  r->set_metric(st.Text(first));
  r->set_mean(st.Double(first + 1));
  r->set_variance(st.Double(first + 2));
  r->set_n(st.Int(first + 3));
  r->set_nominal_compression(st.Double(first + 4));
  r->set_measured_compression(st.Double(first + 5));
  r->set_flops_prefill(st.Double(first + 6));
  r->set_flops_decode(st.Double(first + 7));
  r->set_flops_indexing(st.Double(first + 8));
  r->set_wall_seconds(st.Double(first + 9));
  r->set_tokens_per_second(st.Double(first + 10));
  r->set_worker_id(st.Text(first + 11));
  r->set_gpu_name(st.Text(first + 12));
  r->set_engine_version(st.Text(first + 13));
  r->set_git_commit(st.Text(first + 14));
  const int shape = first + 15;
  const int engine = shape + kResultShapeColumnCount;
  r->set_compute_dtype(st.Text(engine));
  r->set_prefill_attention(st.Text(engine + 1));
  r->set_decode_attention(st.Text(engine + 2));
  const int time = engine + kResultEngineColumnCount;
  r->set_prefill_seconds(st.Double(time));
  r->set_decode_seconds(st.Double(time + 1));
  r->set_estimation_seconds(st.Double(time + 2));
  r->set_attention_kernels(st.Text(time + 3));
  r->set_samples_evaluated(st.Int(shape));
  if (st.Int(shape + 1) == 0) return;  // architecture not recorded
  v1::ModelShape* m = r->mutable_model_shape();
  m->set_hidden(st.Int(shape + 1));
  m->set_layers(st.Int(shape + 2));
  m->set_heads(st.Int(shape + 3));
  m->set_kv_heads(st.Int(shape + 4));
  m->set_head_dim(st.Int(shape + 5));
  m->set_intermediate(st.Int(shape + 6));
  m->set_vocab(st.Int(shape + 7));
  m->set_qkv_bias(st.Int(shape + 8) != 0);
  m->set_tied_embeddings(st.Int(shape + 9) != 0);
  m->set_params(st.Int(shape + 10));
  m->set_random_weights(st.Int(shape + 11) != 0);
}

v1::WorkerInfo ReadWorkerRow(const Statement& st) {
  v1::WorkerInfo info;
  info.ParseFromString(st.Blob(1));
  info.set_worker_id(st.Text(0));
  info.set_last_seen_unix_ms(st.Int(2));
  info.set_jobs_done(st.Int(3));
  info.clear_loaded_models();
  for (absl::string_view m : absl::StrSplit(st.Text(4), '\n', absl::SkipEmpty())) {
    info.add_loaded_models(std::string(m));
  }
  return info;
}

}  // namespace sf::coordinator
