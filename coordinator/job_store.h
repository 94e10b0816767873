// Row mapping between the coordinator's tables and the sf.v1 messages: the column lists
// and the code that binds a message into a statement or reads it back from a row. The
// scheduler (writes) and the results reader (reads) share it, so a column is named in
// one place. See coordinator/schema.cc for the tables.
#ifndef SF_COORDINATOR_JOB_STORE_H_
#define SF_COORDINATOR_JOB_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "coordinator/sqlite.h"
#include "sf/v1/coordinator.pb.h"
#include "sf/v1/worker.pb.h"

namespace sf::coordinator {

// Prepared statements of one connection, compiled on first use and reused. Not
// thread-safe: the owner serializes access, as it does for the connection.
class StatementCache {
 public:
  explicit StatementCache(Database* db) : db_(db) {}
  // The statement for `sql`, compiled on first use. Error: `sql` does not compile.
  absl::StatusOr<Statement*> Get(const std::string& sql);
  void Clear() { statements_.clear(); }

 private:
  Database* const db_;
  absl::flat_hash_map<std::string, std::unique_ptr<Statement>> statements_;
};

// ---- sweeps
// The columns ReadSweepRow reads, in its order, from `sweeps`.
inline constexpr char kSweepColumns[] =
    "id, name, state, priority, created_ms, finished_ms, n_total, n_queued, n_leased, n_done, "
    "n_failed, n_cancelled, n_preemptions, samples_total, samples_done";
// The sweep (with its counts) in the current row, kSweepColumns from column 0.
v1::Sweep ReadSweepRow(const Statement& st);

// ---- jobs
// Inserts a queued job: bind with BindNewJob.
inline constexpr char kInsertJobSql[] =
    "INSERT INTO jobs(key, model_name, model_identity, gpus, sequence_length, "
    "prefill_method, prefill_compression, decode_method, decode_compression, task, "
    "samples_total, seed, memory_bytes, cost, priority, max_attempts, spec, state, "
    "created_ms, updated_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
// Binds kInsertJobSql: the job's typed grid columns and its serialized spec, QUEUED.
Statement& BindNewJob(Statement& st, const v1::JobSpec& job, int priority, int max_attempts,
                      int64_t now_ms);

// ---- samples
// Stores one reported sample unless (job, index) is already stored: bind with BindSample.
inline constexpr char kInsertSampleSql[] =
    "INSERT OR IGNORE INTO samples(job_id, idx, score, prediction, target, input_tokens, "
    "output_tokens, measured_density, wall_seconds, lease_token, created_ms) VALUES "
    "(?,?,?,?,?,?,?,?,?,?,?)";
Statement& BindSample(Statement& st, int64_t job_id, const v1::SampleResult& s,
                      const std::string& lease_token, int64_t now_ms);
// One job's samples in index order: bind the job id; ReadSampleRow reads a row. With
// `with_text` the prediction and target columns are read too.
inline constexpr char kJobSamplesSql[] =
    "SELECT idx, score, input_tokens, output_tokens, measured_density, wall_seconds, "
    "prediction, target FROM samples WHERE job_id=? ORDER BY idx";
void ReadSampleRow(const Statement& st, bool with_text, v1::SampleResult* s);

// ---- results
// Writes a job's aggregate (the columns of schema migration 1): bind with BindResult.
inline constexpr char kInsertResultSql[] =
    "INSERT OR REPLACE INTO results(job_id, metric, mean, variance, n, "
    "nominal_compression, measured_compression, flops_prefill, flops_decode, "
    "flops_indexing, wall_seconds, tokens_per_second, worker_id, gpu_name, "
    "engine_version, git_commit, lease_token, created_ms) VALUES "
    "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
// `r` with the aggregate computed from the stored samples (mean, variance, n) and the
// worker the lease names, in place of what the worker sent.
Statement& BindResult(Statement& st, int64_t job_id, const v1::JobResult& r, double mean,
                      double variance, int64_t n, const std::string& worker,
                      const std::string& lease_token, int64_t now_ms);
// Writes the columns of schema migration 2 (model architecture, samples_evaluated) of a
// result row written by kInsertResultSql: bind with BindResultShape.
inline constexpr char kStoreResultShapeSql[] =
    "UPDATE results SET samples_evaluated=?, model_hidden=?, model_layers=?, model_heads=?, "
    "model_kv_heads=?, model_head_dim=?, model_intermediate=?, model_vocab=?, "
    "model_qkv_bias=?, model_tied_embeddings=?, model_params=?, model_random_weights=? "
    "WHERE job_id=?";
Statement& BindResultShape(Statement& st, const v1::JobResult& r, int64_t job_id);
// Writes the columns of schema migrations 3 (compute dtype, where each phase's attention
// ran) and 4 (seconds per phase, the dense attention kernels): bind with BindResultEngine.
inline constexpr char kStoreResultEngineSql[] =
    "UPDATE results SET compute_dtype=?, prefill_attention=?, decode_attention=?, "
    "prefill_seconds=?, decode_seconds=?, estimation_seconds=?, attention_kernels=? "
    "WHERE job_id=?";
Statement& BindResultEngine(Statement& st, const v1::JobResult& r, int64_t job_id);

// The result columns ReadResultRow reads (of `results r`), for a database at
// `schema_version`: columns of later migrations read as 0 ("not recorded").
std::string ResultColumns(int schema_version);
// The result in the current row, ResultColumns() from column `first`.
void ReadResultRow(const Statement& st, int first, v1::JobResult* r);

// ---- workers
// The registration stored in the row (columns: worker_id, devices blob, last_seen_ms,
// jobs_done, loaded_models), from column 0.
v1::WorkerInfo ReadWorkerRow(const Statement& st);

}  // namespace sf::coordinator

#endif  // SF_COORDINATOR_JOB_STORE_H_
