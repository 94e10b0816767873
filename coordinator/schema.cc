#include "coordinator/schema.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace sf::coordinator {
namespace {

// Index 0 is migration 1. Never edit a released migration: append a new one.
const std::vector<std::string>& Migrations() {
  static const auto* migrations = new std::vector<std::string>{
      // 1: the initial schema (docs/coordinator.md describes each table).
      R"sql(
CREATE TABLE sweeps (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  state INTEGER NOT NULL,            -- sf.v1.SweepState
  priority INTEGER NOT NULL DEFAULT 0,
  spec_yaml TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  -- Counters over the sweep's jobs, kept current on every transition so that
  -- status is O(1) at a million jobs.
  n_total INTEGER NOT NULL DEFAULT 0,
  n_queued INTEGER NOT NULL DEFAULT 0,
  n_leased INTEGER NOT NULL DEFAULT 0,
  n_done INTEGER NOT NULL DEFAULT 0,
  n_failed INTEGER NOT NULL DEFAULT 0,
  n_cancelled INTEGER NOT NULL DEFAULT 0,
  n_preemptions INTEGER NOT NULL DEFAULT 0,
  samples_total INTEGER NOT NULL DEFAULT 0,
  samples_done INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  model_name TEXT NOT NULL,
  model_identity TEXT NOT NULL,
  gpus INTEGER NOT NULL,
  sequence_length INTEGER NOT NULL,
  prefill_method TEXT NOT NULL,
  prefill_compression REAL,
  decode_method TEXT NOT NULL,
  decode_compression REAL,
  task TEXT NOT NULL,
  samples_total INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  memory_bytes INTEGER NOT NULL,
  cost REAL NOT NULL,
  priority INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  spec BLOB NOT NULL,                -- serialized sf.v1.JobSpec
  state INTEGER NOT NULL,            -- sf.v1.JobState
  attempts INTEGER NOT NULL DEFAULT 0,     -- failed attempts (preemptions excluded)
  preemptions INTEGER NOT NULL DEFAULT 0,
  samples_done INTEGER NOT NULL DEFAULT 0,
  lease_token TEXT,
  lease_worker TEXT,
  lease_expires_ms INTEGER,
  next_attempt_ms INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
-- Lease selection: queued jobs by priority then cost, optionally one model first.
-- Partial indexes hold only the rows that need them (queued / leased jobs), so they
-- stay small at a million finished jobs.
CREATE INDEX jobs_queue ON jobs(priority DESC, cost DESC) WHERE state=1;
CREATE INDEX jobs_queue_fifo ON jobs(priority DESC, id) WHERE state=1;
CREATE INDEX jobs_queue_model ON jobs(model_identity, priority DESC, cost DESC) WHERE state=1;
CREATE INDEX jobs_lease_expiry ON jobs(lease_expires_ms) WHERE state=2;
CREATE INDEX jobs_lease_token ON jobs(lease_token) WHERE lease_token IS NOT NULL;
-- Result filters.
CREATE INDEX jobs_model ON jobs(model_name, sequence_length, prefill_method, decode_method, task);
CREATE INDEX jobs_seqlen ON jobs(sequence_length);
CREATE INDEX jobs_prefill ON jobs(prefill_method, prefill_compression);
CREATE INDEX jobs_decode ON jobs(decode_method, decode_compression);
CREATE INDEX jobs_task ON jobs(task);

CREATE TABLE sweep_jobs (
  sweep_id INTEGER NOT NULL REFERENCES sweeps(id),
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  PRIMARY KEY (sweep_id, job_id)
) WITHOUT ROWID;
CREATE INDEX sweep_jobs_job ON sweep_jobs(job_id, sweep_id);

CREATE TABLE samples (
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  idx INTEGER NOT NULL,
  score REAL NOT NULL,
  prediction TEXT NOT NULL,
  target TEXT NOT NULL,
  input_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  measured_density REAL NOT NULL,
  wall_seconds REAL NOT NULL,
  lease_token TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;

CREATE TABLE results (
  job_id INTEGER PRIMARY KEY REFERENCES jobs(id),
  metric TEXT NOT NULL,
  mean REAL NOT NULL,
  variance REAL NOT NULL,
  n INTEGER NOT NULL,
  nominal_compression REAL NOT NULL,
  measured_compression REAL NOT NULL,
  flops_prefill REAL NOT NULL,
  flops_decode REAL NOT NULL,
  flops_indexing REAL NOT NULL,
  wall_seconds REAL NOT NULL,
  tokens_per_second REAL NOT NULL,
  worker_id TEXT NOT NULL,
  gpu_name TEXT NOT NULL,
  engine_version TEXT NOT NULL,
  git_commit TEXT NOT NULL,
  lease_token TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);

CREATE TABLE workers (
  worker_id TEXT PRIMARY KEY,
  hostname TEXT NOT NULL,
  devices BLOB NOT NULL,             -- serialized sf.v1.WorkerInfo (devices, methods...)
  max_device_memory INTEGER NOT NULL,
  device_count INTEGER NOT NULL,
  loaded_models TEXT NOT NULL DEFAULT '',  -- identities, '\n'-separated
  engine_version TEXT NOT NULL DEFAULT '',
  registered_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL,
  jobs_done INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  sweep_id INTEGER NOT NULL,
  kind INTEGER NOT NULL,             -- sf.v1.EventKind
  job_key TEXT NOT NULL DEFAULT '',
  worker_id TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '',
  unix_ms INTEGER NOT NULL
);
CREATE INDEX events_sweep ON events(sweep_id, seq);
)sql",
      // 2: the model's architecture and the random-weights mark with each result, so the
      // analysis needs no model files; samples_evaluated = samples the FLOPs cover.
      // model_hidden = 0 means not recorded (results of older workers).
      R"sql(
ALTER TABLE results ADD COLUMN samples_evaluated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN model_hidden INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN model_layers INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN model_heads INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN model_kv_heads INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN model_head_dim INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN model_intermediate INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN model_vocab INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN model_qkv_bias INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN model_tied_embeddings INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN model_params INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN model_random_weights INTEGER NOT NULL DEFAULT 0;
)sql",
      // 3: how the engine ran each job (element type, where each phase's attention ran);
      // '' means not recorded.
      R"sql(
ALTER TABLE results ADD COLUMN compute_dtype TEXT NOT NULL DEFAULT '';
ALTER TABLE results ADD COLUMN prefill_attention TEXT NOT NULL DEFAULT '';
ALTER TABLE results ADD COLUMN decode_attention TEXT NOT NULL DEFAULT '';
)sql",
      // 4: seconds per phase over the samples the attempt evaluated, the methods'
      // estimation share, and the kernels exactly dense attention ran on; 0 / '' means
      // not recorded.
      R"sql(
ALTER TABLE results ADD COLUMN prefill_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN decode_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN estimation_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN attention_kernels TEXT NOT NULL DEFAULT '';
)sql",
      // 5: where a batch scheduler placed each worker (Slurm job id and node, as the
      // worker registered them); '' outside one.
      R"sql(
ALTER TABLE workers ADD COLUMN slurm_job_id TEXT NOT NULL DEFAULT '';
ALTER TABLE workers ADD COLUMN slurm_node TEXT NOT NULL DEFAULT '';
)sql",
  };
  return *migrations;
}

}  // namespace

int CurrentSchemaVersion() { return static_cast<int>(Migrations().size()); }

absl::StatusOr<int> SchemaVersion(Database* db) {
  SF_RETURN_IF_ERROR(
      db->Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, "
               "applied_ms INTEGER NOT NULL)"));
  SF_ASSIGN_OR_RETURN(auto stmt,
                      db->Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version"));
  SF_ASSIGN_OR_RETURN(bool row, stmt->Step());
  return row ? static_cast<int>(stmt->Int(0)) : 0;
}

absl::Status Migrate(Database* db) {
  SF_ASSIGN_OR_RETURN(int version, SchemaVersion(db));
  const auto& migrations = Migrations();
  if (version > CurrentSchemaVersion()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database ", db->path(), " has schema version ", version, " but this build knows only ",
        CurrentSchemaVersion(), ": use a newer sf-coordinator"));
  }
  for (int v = version + 1; v <= CurrentSchemaVersion(); ++v) {
    SF_ASSIGN_OR_RETURN(auto txn, Transaction::Begin(db));
    SF_RETURN_IF_ERROR(
        Annotate(db->Exec(migrations[v - 1]), absl::StrCat("applying schema migration ", v)));
    SF_RETURN_IF_ERROR(
        db->Exec(absl::StrCat("INSERT INTO schema_version(version, applied_ms) VALUES (", v,
                              ", CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))")));
    SF_RETURN_IF_ERROR(txn->Commit());
  }
  return absl::OkStatus();
}

}  // namespace sf::coordinator
