#include "coordinator/scheduler.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/layer_plan.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/sweep_name.h"
#include "coordinator/field_limits.h"
#include "coordinator/results_reader.h"
#include "coordinator/schema.h"

namespace sf::coordinator {
namespace {

constexpr int kQueued = v1::JOB_STATE_QUEUED;
constexpr int kLeased = v1::JOB_STATE_LEASED;
constexpr int kDone = v1::JOB_STATE_DONE;
constexpr int kFailed = v1::JOB_STATE_FAILED;
constexpr int kCancelled = v1::JOB_STATE_CANCELLED;
constexpr int kSweepRunning = v1::SWEEP_STATE_RUNNING;
constexpr int kSweepFinished = v1::SWEEP_STATE_FINISHED;
constexpr int kSweepCancelled = v1::SWEEP_STATE_CANCELLED;

// Limits that keep one malformed request from exhausting memory or the database.
constexpr size_t kMaxKeyLength = 256;
constexpr size_t kMaxNameLength = 128;  // worker ids
constexpr size_t kMaxErrorLength = 16 * 1024;
constexpr size_t kMaxSampleText = 1 << 20;
constexpr int kMaxLeasesPerCall = 32;  // LeaseRequest.max_leases

const char* CounterColumn(int state) {
  switch (state) {
    case kQueued:
      return "n_queued";
    case kLeased:
      return "n_leased";
    case kDone:
      return "n_done";
    case kFailed:
      return "n_failed";
    case kCancelled:
      return "n_cancelled";
    default:
      return nullptr;
  }
}

bool ValidIdent(absl::string_view name, size_t max_length) {
  if (name.empty() || name.size() > max_length) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

bool ValidName(absl::string_view name) { return ValidIdent(name, kMaxNameLength); }
bool ValidKey(absl::string_view key) { return ValidIdent(key, kMaxKeyLength); }

bool Finite(double x) { return std::isfinite(x); }

std::string Truncate(const std::string& text, size_t n) {
  return text.size() <= n ? text : text.substr(0, n);
}

// The GPU side of a worker's caps from its registered devices: per device the free
// memory it reported, else its total.
WorkerCaps CapsFromDevices(const google::protobuf::RepeatedPtrField<v1::Device>& devices) {
  WorkerCaps caps;
  for (const v1::Device& d : devices) {
    caps.max_device_memory = std::max(caps.max_device_memory, d.memory_bytes());
    caps.device_memory.push_back(d.has_free_memory_bytes() ? d.free_memory_bytes()
                                                           : d.memory_bytes());
  }
  caps.device_count = devices.size();
  return caps;
}

absl::Status ValidateJob(const v1::JobSpec& job, int i) {
  auto bad = [i, &job](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("jobs[", i, "] (key '", Truncate(job.key(), 64), "'): ", what));
  };
  if (!ValidKey(job.key())) {
    return bad("key must be 1-256 characters of [A-Za-z0-9._-]; run the spec expansion");
  }
  if (job.model().name().empty()) return bad("model.name is empty");
  if (job.task().name().empty()) return bad("task.name is empty");
  if (job.task().samples() < 0) return bad("task.samples is negative");
  if (job.sequence_length() < 0) return bad("sequence_length is negative");
  if (job.memory_bytes() < 0) return bad("memory_bytes is negative");
  if (job.model().gpus() < 0) return bad("model.gpus is negative");
  if (job.has_gpu_memory()) {
    const v1::GpuMemoryProfile& g = job.gpu_memory();
    const model::LayerMemoryProfile p{.layers = g.layers(),
                                      .per_layer_bytes = g.per_layer_bytes(),
                                      .first_stage_bytes = g.first_stage_bytes(),
                                      .last_stage_bytes = g.last_stage_bytes(),
                                      .per_stage_bytes = g.per_stage_bytes(),
                                      .shared_end_bytes = g.shared_end_bytes()};
    if (absl::Status s = p.Validate(); !s.ok()) return bad(s.message());
  }
  if (!Finite(job.cost()) || job.cost() < 0) return bad("cost must be finite and >= 0");
  for (const auto& [phase, m] : {std::pair{"prefill", &job.prefill()}, {"decode", &job.decode()}}) {
    if (m->has_compression() && !(Finite(m->compression()) && m->compression() >= 1)) {
      return bad(absl::StrCat(phase, ".compression ", m->compression(),
                              " must be finite and at least 1 (1 = dense)"));
    }
  }
  return absl::OkStatus();
}

// What ReportSamples and Complete check of each sample before taking the store: the
// index is not negative, the numbers are finite, the texts within their limits. The
// index's upper bound needs the job (Scheduler::CheckSampleRange).
absl::Status ValidateSamples(const google::protobuf::RepeatedPtrField<v1::SampleResult>& samples) {
  for (const v1::SampleResult& s : samples) {
    if (s.index() < 0) return absl::InvalidArgumentError("sample index is negative");
    if (!Finite(s.score()) || !Finite(s.measured_density()) || !Finite(s.wall_seconds())) {
      return absl::InvalidArgumentError(
          absl::StrCat("sample ", s.index(), ": score, density and time must be finite"));
    }
    if (s.prediction().size() > kMaxSampleText || s.target().size() > kMaxSampleText) {
      return absl::InvalidArgumentError(
          absl::StrCat("sample ", s.index(), ": prediction/target longer than 1 MiB"));
    }
  }
  return absl::OkStatus();
}

// PRAGMA quick_check: every page and b-tree of the file is readable and well formed
// (integrity_check without the slower cross-checks of indexes against tables). A
// coordinator must not serve, and write to, a damaged database.
absl::Status CheckIntegrity(Database& db) {
  if (db.path() == ":memory:") return absl::OkStatus();
  std::vector<std::string> problems;
  absl::Status read = [&]() -> absl::Status {
    SF_ASSIGN_OR_RETURN(std::unique_ptr<Statement> check, db.Prepare("PRAGMA quick_check(20)"));
    while (true) {
      SF_ASSIGN_OR_RETURN(bool row, check->Step());
      if (!row) return absl::OkStatus();
      const std::string line = check->Text(0);
      if (line != "ok") problems.push_back(line);
    }
  }();
  if (read.ok() && problems.empty()) return absl::OkStatus();
  if (!read.ok()) problems.push_back(std::string(read.message()));
  const std::string& path = db.path();
  return absl::FailedPreconditionError(absl::StrCat(
      "database ", path,
      " fails SQLite's integrity check (quick_check: ", absl::StrJoin(problems, "; "),
      "). Not serving it. To recover: stop every process using it; copy ", path,
      " (and its -wal "
      "file) aside; run `sqlite3 ",
      path, " .recover | sqlite3 ", path, ".recovered`; start sf-coordinator with --db ", path,
      ".recovered (or restore a backup). Leases in flight are lost: their jobs run again, "
      "resuming from the samples recovered."));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Open(const std::string& path, Clock* clock,
                                                           SchedulerOptions options) {
  if (options.max_attempts < 1) {
    return absl::InvalidArgumentError("max_attempts must be at least 1");
  }
  if (options.lease_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("lease_ttl must be positive");
  }
  SF_ASSIGN_OR_RETURN(auto db, Database::OpenWriter(path));
  SF_RETURN_IF_ERROR(CheckIntegrity(*db));
  SF_RETURN_IF_ERROR(Annotate(Migrate(db.get()), absl::StrCat("opening ", path)));
  std::unique_ptr<Scheduler> s(new Scheduler(path, clock, options, std::move(db)));
  absl::MutexLock lock(&s->mu_);
  SF_ASSIGN_OR_RETURN(Statement * max_seq, s->Stmt("SELECT COALESCE(MAX(seq), 0) FROM events"));
  SF_ASSIGN_OR_RETURN(bool row, max_seq->Step());
  if (row) s->last_event_seq_ = max_seq->Int(0);
  max_seq->Reset();
  return s;
}

Scheduler::Scheduler(std::string path, Clock* clock, SchedulerOptions options,
                     std::unique_ptr<Database> db)
    : path_(std::move(path)),
      clock_(clock),
      options_(options),
      db_(std::move(db)),
      statements_(db_.get()),
      // Cached registrations may describe rows a failed commit rolled back: reload them.
      commit_(&mu_, db_.get(), options.max_batch_calls, [this] { workers_.clear(); }) {}

Scheduler::~Scheduler() {
  absl::MutexLock lock(&mu_);
  // Every call commits before it returns, so no batch should be open; be safe anyway.
  (void)commit_.CommitBatch();
  statements_.Clear();
}

int64_t Scheduler::NowMs() const { return absl::ToUnixMillis(clock_->Now()); }

absl::StatusOr<Statement*> Scheduler::Stmt(const std::string& sql) { return statements_.Get(sql); }

Scheduler::CommitStats Scheduler::commit_stats() const {
  absl::MutexLock lock(&mu_);
  const GroupCommit::Stats stats = commit_.stats();
  return {stats.commits, stats.calls};
}

absl::StatusOr<std::string> Scheduler::NewToken() {
  // A lease token is the only proof a worker holds a job: 128 bits from the operating
  // system's generator, so that no token says anything about another.
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return absl::InternalError("no random bytes for a lease token (OpenSSL RAND_bytes failed)");
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

void Scheduler::NotifyLocked() { work_cv_.SignalAll(); }

void Scheduler::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
  work_cv_.SignalAll();
  event_cv_.SignalAll();
}

// ---------------------------------------------------------------- state helpers

absl::Status Scheduler::SetState(int64_t job_id, int from, int to) {
  SF_ASSIGN_OR_RETURN(Statement * st, Stmt("UPDATE jobs SET state=?, updated_ms=? WHERE id=?"));
  SF_RETURN_IF_ERROR(st->Bind(1, to).Bind(2, NowMs()).Bind(3, job_id).Run());
  if (from == to) return absl::OkStatus();
  const char* dec = CounterColumn(from);
  const char* inc = CounterColumn(to);
  std::string sets;
  if (dec != nullptr) absl::StrAppend(&sets, dec, "=", dec, "-1");
  if (inc != nullptr) absl::StrAppend(&sets, sets.empty() ? "" : ",", inc, "=", inc, "+1");
  if (to == kQueued || to == kLeased) {
    // A job that runs again reopens a sweep that had finished with it.
    absl::StrAppend(&sets, ",state=CASE state WHEN ", kSweepFinished, " THEN ", kSweepRunning,
                    " ELSE state END, finished_ms=CASE state WHEN ", kSweepFinished,
                    " THEN 0 ELSE finished_ms END");
  }
  SF_ASSIGN_OR_RETURN(Statement * up,
                      Stmt(absl::StrCat("UPDATE sweeps SET ", sets,
                                        " WHERE id IN (SELECT sweep_id FROM sweep_jobs "
                                        "WHERE job_id=?)")));
  return up->Bind(1, job_id).Run();
}

absl::Status Scheduler::AddJobEvent(int64_t job_id, int kind, const std::string& key,
                                    const std::string& worker, const std::string& message) {
  SF_ASSIGN_OR_RETURN(Statement * st,
                      Stmt("INSERT INTO events(sweep_id, kind, job_key, worker_id, message, "
                           "unix_ms) SELECT sweep_id, ?, ?, ?, ?, ? FROM sweep_jobs "
                           "WHERE job_id=?"));
  SF_RETURN_IF_ERROR(st->Bind(1, kind)
                         .Bind(2, key)
                         .Bind(3, worker)
                         .Bind(4, message)
                         .Bind(5, NowMs())
                         .Bind(6, job_id)
                         .Run());
  last_event_seq_ = std::max(last_event_seq_, db_->LastInsertRowId());
  return absl::OkStatus();
}

absl::Status Scheduler::AddSweepEvent(int64_t sweep_id, int kind, const std::string& message) {
  SF_ASSIGN_OR_RETURN(Statement * st, Stmt("INSERT INTO events(sweep_id, kind, message, unix_ms) "
                                           "VALUES (?, ?, ?, ?)"));
  SF_RETURN_IF_ERROR(st->Bind(1, sweep_id).Bind(2, kind).Bind(3, message).Bind(4, NowMs()).Run());
  last_event_seq_ = std::max(last_event_seq_, db_->LastInsertRowId());
  return absl::OkStatus();
}

absl::Status Scheduler::FinishSweepIfDone(int64_t sweep_id) {
  SF_ASSIGN_OR_RETURN(Statement * st,
                      Stmt(absl::StrCat("UPDATE sweeps SET state=", kSweepFinished,
                                        ", finished_ms=? WHERE id=? AND state=", kSweepRunning,
                                        " AND n_queued=0 AND n_leased=0")));
  SF_RETURN_IF_ERROR(st->Bind(1, NowMs()).Bind(2, sweep_id).Run());
  if (db_->Changes() > 0) {
    SF_RETURN_IF_ERROR(AddSweepEvent(sweep_id, v1::EVENT_KIND_SWEEP_FINISHED, ""));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> Scheduler::SweepsSharingJobsWith(int64_t sweep_id) {
  SF_ASSIGN_OR_RETURN(Statement * st,
                      Stmt("SELECT DISTINCT b.sweep_id FROM sweep_jobs a JOIN sweep_jobs b ON "
                           "a.job_id=b.job_id WHERE a.sweep_id=?"));
  st->Bind(1, sweep_id);
  return st->Ints();
}

absl::Status Scheduler::FinishSweepsOf(int64_t job_id) {
  SF_ASSIGN_OR_RETURN(Statement * st, Stmt("SELECT sweep_id FROM sweep_jobs WHERE job_id=?"));
  st->Bind(1, job_id);
  SF_ASSIGN_OR_RETURN(std::vector<int64_t> sweeps, st->Ints());
  for (int64_t id : sweeps) SF_RETURN_IF_ERROR(FinishSweepIfDone(id));
  return absl::OkStatus();
}

absl::Status Scheduler::Recount(int64_t sweep_id) {
  SF_ASSIGN_OR_RETURN(
      Statement * st,
      Stmt(absl::StrCat(
          "SELECT COUNT(*), SUM(j.state=", kQueued, "), SUM(j.state=", kLeased,
          "), SUM(j.state=", kDone, "), SUM(j.state=", kFailed, "), SUM(j.state=", kCancelled,
          "), SUM(j.samples_total), SUM(j.samples_done) FROM sweep_jobs sj JOIN jobs j ON "
          "j.id=sj.job_id WHERE sj.sweep_id=?")));
  st->Bind(1, sweep_id);
  SF_ASSIGN_OR_RETURN(bool row, st->Step());
  int64_t v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  if (row) {
    for (int i = 0; i < 8; ++i) v[i] = st->Int(i);
  }
  st->Reset();
  SF_ASSIGN_OR_RETURN(
      Statement * up,
      Stmt("UPDATE sweeps SET n_total=?, n_queued=?, n_leased=?, n_done=?, "
           "n_failed=?, n_cancelled=?, samples_total=?, samples_done=? WHERE id=?"));
  for (int i = 0; i < 8; ++i) up->Bind(i + 1, v[i]);
  return up->Bind(9, sweep_id).Run();
}

absl::Status Scheduler::ExpireLocked(int* expired) {
  const int64_t now = NowMs();
  SF_ASSIGN_OR_RETURN(Statement * st,
                      Stmt(absl::StrCat("SELECT id, key, lease_worker, lease_expires_ms FROM "
                                        "jobs WHERE state=",
                                        kLeased, " AND lease_expires_ms < ?")));
  st->Bind(1, now);
  std::vector<LeasedJob> jobs;
  while (true) {
    SF_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    jobs.push_back({st->Int(0), st->Text(1), st->Text(2), st->Int(3), kLeased});
  }
  st->Reset();
  if (jobs.empty()) return absl::OkStatus();
  SF_ASSIGN_OR_RETURN(auto txn, commit_.Begin());
  for (const LeasedJob& job : jobs) {
    SF_RETURN_IF_ERROR(EndAttempt(
        job,
        absl::StrCat("lease expired: worker '", job.worker, "' sent no heartbeat within ",
                     absl::FormatDuration(options_.lease_ttl)),
        /*preempted=*/false, /*permanent=*/false, nullptr, /*ended_ms=*/job.expires_ms));
  }
  SF_RETURN_IF_ERROR(txn->Commit());
  if (expired) *expired = static_cast<int>(jobs.size());
  SF_LOG(INFO) << "re-queued " << jobs.size() << " job(s) whose lease expired";
  NotifyLocked();
  event_cv_.SignalAll();
  return absl::OkStatus();
}

absl::StatusOr<int> Scheduler::ExpireLeases() {
  GroupCommit::Call lock(&commit_);
  int n = 0;
  SF_RETURN_IF_ERROR(ExpireLocked(&n));
  return lock.Finish(n);
}

absl::Status Scheduler::EndAttempt(const LeasedJob& job, const std::string& error, bool preempted,
                                   bool permanent, v1::FailResponse* response, int64_t ended_ms) {
  const int64_t now = NowMs();
  // Backoff runs from when the attempt ended: for an expired lease, its expiry, not the
  // moment some later call noticed it.
  const int64_t ended = ended_ms >= 0 ? std::min(ended_ms, now) : now;
  if (preempted) {
    SF_ASSIGN_OR_RETURN(Statement * st,
                        Stmt("UPDATE jobs SET preemptions=preemptions+1, lease_token=NULL, "
                             "lease_expires_ms=NULL, next_attempt_ms=?, last_error=? "
                             "WHERE id=?"));
    SF_RETURN_IF_ERROR(st->Bind(1, now).Bind(2, error).Bind(3, job.id).Run());
    SF_RETURN_IF_ERROR(SetState(job.id, kLeased, kQueued));
    SF_ASSIGN_OR_RETURN(Statement * sw,
                        Stmt("UPDATE sweeps SET n_preemptions=n_preemptions+1 WHERE id IN "
                             "(SELECT sweep_id FROM sweep_jobs WHERE job_id=?)"));
    SF_RETURN_IF_ERROR(sw->Bind(1, job.id).Run());
    SF_RETURN_IF_ERROR(
        AddJobEvent(job.id, v1::EVENT_KIND_JOB_PREEMPTED, job.key, job.worker, error));
    if (response) {
      response->set_will_retry(true);
      response->set_next_attempt_unix_ms(now);
    }
    return absl::OkStatus();
  }
  SF_ASSIGN_OR_RETURN(Statement * get, Stmt("SELECT attempts, max_attempts FROM jobs WHERE id=?"));
  get->Bind(1, job.id);
  SF_ASSIGN_OR_RETURN(bool row, get->Step());
  if (!row) return absl::InternalError(absl::StrCat("job ", job.id, " vanished"));
  const int64_t attempts = get->Int(0) + 1;
  const int64_t max_attempts = get->Int(1);
  get->Reset();
  const bool give_up = permanent || attempts >= max_attempts;
  absl::Duration delay = options_.backoff_base;
  for (int64_t i = 1; i < attempts && delay < options_.backoff_max; ++i) delay *= 2;
  delay = std::min(delay, options_.backoff_max);
  const int64_t next = give_up ? 0 : ended + absl::ToInt64Milliseconds(delay);
  SF_ASSIGN_OR_RETURN(Statement * st,
                      Stmt("UPDATE jobs SET attempts=?, lease_token=NULL, lease_expires_ms=NULL, "
                           "next_attempt_ms=?, last_error=? WHERE id=?"));
  SF_RETURN_IF_ERROR(st->Bind(1, attempts).Bind(2, next).Bind(3, error).Bind(4, job.id).Run());
  SF_RETURN_IF_ERROR(SetState(job.id, kLeased, give_up ? kFailed : kQueued));
  SF_RETURN_IF_ERROR(AddJobEvent(
      job.id, give_up ? v1::EVENT_KIND_JOB_FAILED : v1::EVENT_KIND_JOB_RETRY, job.key, job.worker,
      absl::StrCat("attempt ", attempts, "/", max_attempts, permanent ? " (permanent)" : "", ": ",
                   error)));
  if (give_up) SF_RETURN_IF_ERROR(FinishSweepsOf(job.id));
  if (response) {
    response->set_will_retry(!give_up);
    response->set_next_attempt_unix_ms(next);
  }
  return absl::OkStatus();
}

absl::StatusOr<Scheduler::LeasedJob> Scheduler::LiveLease(const std::string& token) {
  if (token.empty()) return absl::InvalidArgumentError("lease_token is empty");
  SF_ASSIGN_OR_RETURN(Statement * st,
                      Stmt("SELECT id, key, lease_worker, lease_expires_ms, state FROM jobs "
                           "WHERE lease_token=? AND lease_token IS NOT NULL"));
  st->Bind(1, token);
  SF_ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) {
    st->Reset();
    return absl::AbortedError(absl::StrCat(
        "lease ", Truncate(token, 64),
        " is not live (expired, completed, or superseded by another attempt): drop the job"));
  }
  LeasedJob job{st->Int(0), st->Text(1), st->Text(2), st->Int(3), static_cast<int>(st->Int(4))};
  st->Reset();
  if (job.state == kCancelled) {
    return absl::AbortedError(absl::StrCat("job ", job.key, " was cancelled: drop it"));
  }
  if (job.state != kLeased || job.expires_ms < NowMs()) {
    return absl::AbortedError(
        absl::StrCat("lease ", token, " of job ", job.key, " has expired: drop the job"));
  }
  return job;
}

// ---------------------------------------------------------------- user-facing

absl::StatusOr<v1::SubmitSweepResponse> Scheduler::SubmitSweep(
    const v1::SubmitSweepRequest& request) {
  SF_RETURN_IF_ERROR(CheckFieldLimits(request));
  if (!IsValidSweepName(request.sweep_name())) {
    return absl::InvalidArgumentError(
        "sweep_name must be 1-128 characters of [A-Za-z0-9._-] (set `name:` in the spec)");
  }
  if (request.max_attempts() < 0) {
    return absl::InvalidArgumentError("max_attempts must be >= 0 (0 = default)");
  }
  for (int i = 0; i < request.jobs_size(); ++i) {
    SF_RETURN_IF_ERROR(ValidateJob(request.jobs(i), i));
  }
  const int max_attempts =
      request.max_attempts() > 0 ? request.max_attempts() : options_.max_attempts;
  GroupCommit::Call lock(&commit_);
  const int64_t now = NowMs();
  SF_ASSIGN_OR_RETURN(auto txn, commit_.Begin());
  int64_t sweep_id = 0;
  {
    SF_ASSIGN_OR_RETURN(Statement * find, Stmt("SELECT id FROM sweeps WHERE name=?"));
    find->Bind(1, request.sweep_name());
    SF_ASSIGN_OR_RETURN(bool row, find->Step());
    if (row) sweep_id = find->Int(0);
    find->Reset();
    if (row) {
      SF_ASSIGN_OR_RETURN(Statement * up,
                          Stmt(absl::StrCat("UPDATE sweeps SET state=", kSweepRunning,
                                            ", finished_ms=0, priority=?, spec_yaml=? "
                                            "WHERE id=?")));
      SF_RETURN_IF_ERROR(
          up->Bind(1, request.priority()).Bind(2, request.spec_yaml()).Bind(3, sweep_id).Run());
    } else {
      SF_ASSIGN_OR_RETURN(Statement * ins,
                          Stmt("INSERT INTO sweeps(name, state, priority, spec_yaml, "
                               "created_ms) VALUES (?, ?, ?, ?, ?)"));
      SF_RETURN_IF_ERROR(ins->Bind(1, request.sweep_name())
                             .Bind(2, kSweepRunning)
                             .Bind(3, request.priority())
                             .Bind(4, request.spec_yaml())
                             .Bind(5, now)
                             .Run());
      sweep_id = db_->LastInsertRowId();
    }
  }
  SF_ASSIGN_OR_RETURN(Statement * find_job,
                      Stmt("SELECT id, state, samples_done < samples_total FROM jobs WHERE key=?"));
  SF_ASSIGN_OR_RETURN(Statement * insert_job, Stmt(kInsertJobSql));
  SF_ASSIGN_OR_RETURN(Statement * link,
                      Stmt("INSERT OR IGNORE INTO sweep_jobs(sweep_id, job_id) VALUES (?, ?)"));
  SF_ASSIGN_OR_RETURN(Statement * bump,
                      Stmt("UPDATE jobs SET priority=?1 WHERE id=?2 AND priority<?1"));
  SF_ASSIGN_OR_RETURN(Statement * reset_job,
                      Stmt("UPDATE jobs SET attempts=0, preemptions=0, next_attempt_ms=0, "
                           "last_error='', lease_token=NULL, lease_expires_ms=NULL, "
                           "max_attempts=? WHERE id=?"));
  SF_ASSIGN_OR_RETURN(Statement * drop_samples, Stmt("DELETE FROM samples WHERE job_id=?"));
  SF_ASSIGN_OR_RETURN(Statement * drop_result, Stmt("DELETE FROM results WHERE job_id=?"));
  SF_ASSIGN_OR_RETURN(Statement * zero_done, Stmt("UPDATE jobs SET samples_done=0 WHERE id=?"));

  v1::SubmitSweepResponse response;
  response.set_sweep_id(sweep_id);
  absl::flat_hash_set<std::string> seen;
  std::vector<int64_t> job_ids;
  bool dropped_samples = false;
  for (const v1::JobSpec& job : request.jobs()) {
    if (!seen.insert(job.key()).second) continue;
    find_job->Bind(1, job.key());
    SF_ASSIGN_OR_RETURN(bool exists, find_job->Step());
    int64_t job_id = exists ? find_job->Int(0) : 0;
    int state = exists ? static_cast<int>(find_job->Int(1)) : 0;
    // A job completed with samples missing (recorded in its last_error) is run again
    // to fill them in, not reused.
    const bool short_of_samples = exists && find_job->Int(2) != 0;
    find_job->Reset();
    if (!exists) {
      SF_RETURN_IF_ERROR(BindNewJob(*insert_job, job, request.priority(), max_attempts, now).Run());
      job_id = db_->LastInsertRowId();
      response.set_jobs_queued(response.jobs_queued() + 1);
    } else {
      SF_RETURN_IF_ERROR(bump->Bind(1, request.priority()).Bind(2, job_id).Run());
      const bool terminal = state == kDone || state == kFailed || state == kCancelled;
      const bool rerun = terminal && (request.force() || state != kDone || short_of_samples);
      if (rerun) {
        if (request.force()) {
          SF_RETURN_IF_ERROR(drop_samples->Bind(1, job_id).Run());
          SF_RETURN_IF_ERROR(zero_done->Bind(1, job_id).Run());
          dropped_samples = true;
        }
        SF_RETURN_IF_ERROR(drop_result->Bind(1, job_id).Run());
        SF_RETURN_IF_ERROR(reset_job->Bind(1, max_attempts).Bind(2, job_id).Run());
        SF_RETURN_IF_ERROR(SetState(job_id, state, kQueued));
        response.set_jobs_queued(response.jobs_queued() + 1);
      } else {
        response.set_jobs_reused(response.jobs_reused() + 1);
      }
    }
    SF_RETURN_IF_ERROR(link->Bind(1, sweep_id).Bind(2, job_id).Run());
    job_ids.push_back(job_id);
  }
  response.set_jobs_total(static_cast<int64_t>(seen.size()));
  if (dropped_samples) {
    // Forced jobs may be shared: every sweep holding one lost its samples too.
    SF_ASSIGN_OR_RETURN(std::vector<int64_t> sharing, SweepsSharingJobsWith(sweep_id));
    for (int64_t id : sharing) SF_RETURN_IF_ERROR(Recount(id));
  } else {
    SF_RETURN_IF_ERROR(Recount(sweep_id));
  }
  SF_RETURN_IF_ERROR(AddSweepEvent(
      sweep_id, v1::EVENT_KIND_SWEEP_SUBMITTED,
      absl::StrCat(response.jobs_total(), " jobs: ", response.jobs_queued(), " queued, ",
                   response.jobs_reused(), " reused", request.force() ? " (force)" : "")));
  SF_RETURN_IF_ERROR(RefreshUnplaceable(&job_ids));
  SF_RETURN_IF_ERROR(FinishSweepIfDone(sweep_id));
  SF_RETURN_IF_ERROR(txn->Commit());
  NotifyLocked();
  event_cv_.SignalAll();
  return lock.Finish(response);
}

absl::StatusOr<v1::SweepCounts> Scheduler::Counts(int64_t sweep_id) {
  SF_ASSIGN_OR_RETURN(v1::Sweep sweep, SweepById(sweep_id));
  return sweep.counts();
}

absl::StatusOr<v1::Sweep> Scheduler::SweepById(int64_t id) {
  SF_ASSIGN_OR_RETURN(Statement * st,
                      Stmt(absl::StrCat("SELECT ", kSweepColumns, " FROM sweeps WHERE id=?")));
  st->Bind(1, id);
  SF_ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) {
    st->Reset();
    return absl::NotFoundError(absl::StrCat("no sweep with id ", id, " (see `sfctl list`)"));
  }
  v1::Sweep sweep = ReadSweepRow(*st);
  st->Reset();
  return sweep;
}

absl::StatusOr<v1::Sweep> Scheduler::GetSweep(const v1::GetSweepRequest& request) {
  GroupCommit::Call lock(&commit_);
  if (request.sweep_case() == v1::GetSweepRequest::kName) {
    SF_ASSIGN_OR_RETURN(Statement * find, Stmt("SELECT id FROM sweeps WHERE name=?"));
    find->Bind(1, request.name());
    SF_ASSIGN_OR_RETURN(bool row, find->Step());
    int64_t id = row ? find->Int(0) : 0;
    find->Reset();
    if (!row) {
      return absl::NotFoundError(
          absl::StrCat("no sweep named '", Truncate(request.name(), 128), "'"));
    }
    return lock.Finish(SweepById(id));
  }
  if (request.sweep_case() != v1::GetSweepRequest::kId) {
    return absl::InvalidArgumentError("give a sweep id or name");
  }
  return lock.Finish(SweepById(request.id()));
}

absl::StatusOr<v1::ListSweepsResponse> Scheduler::ListSweeps(const v1::ListSweepsRequest& request) {
  GroupCommit::Call lock(&commit_);
  const int limit = request.limit() > 0 ? std::min(request.limit(), 10000) : 100;
  SF_ASSIGN_OR_RETURN(Statement * st,
                      Stmt(absl::StrCat("SELECT id FROM sweeps WHERE ? OR state=", kSweepRunning,
                                        " ORDER BY id DESC LIMIT ?")));
  st->Bind(1, request.include_finished() ? 1 : 0).Bind(2, limit);
  SF_ASSIGN_OR_RETURN(std::vector<int64_t> ids, st->Ints());
  v1::ListSweepsResponse response;
  for (int64_t id : ids) {
    SF_ASSIGN_OR_RETURN(*response.add_sweeps(), SweepById(id));
  }
  return lock.Finish(response);
}

absl::StatusOr<v1::CancelSweepResponse> Scheduler::CancelSweep(
    const v1::CancelSweepRequest& request) {
  GroupCommit::Call lock(&commit_);
  SF_ASSIGN_OR_RETURN(v1::Sweep sweep, SweepById(request.sweep_id()));
  // A finished sweep stays finished: its jobs are done or failed, nothing is left to
  // cancel, and CANCELLED would misreport how it ended.
  if (sweep.state() == v1::SWEEP_STATE_FINISHED) return lock.Finish(v1::CancelSweepResponse());
  SF_ASSIGN_OR_RETURN(auto txn, commit_.Begin());
  // Jobs shared with another running sweep keep running for it.
  SF_ASSIGN_OR_RETURN(
      Statement * cancel,
      Stmt(absl::StrCat(
          "UPDATE jobs SET state=", kCancelled,
          ", updated_ms=? WHERE id IN (SELECT job_id FROM "
          "sweep_jobs WHERE sweep_id=?) AND state IN (",
          kQueued, ",", kLeased,
          ") AND NOT EXISTS (SELECT 1 FROM sweep_jobs o JOIN sweeps s ON s.id=o.sweep_id "
          "WHERE o.job_id=jobs.id AND o.sweep_id<>? AND s.state=",
          kSweepRunning, ")")));
  SF_RETURN_IF_ERROR(
      cancel->Bind(1, NowMs()).Bind(2, request.sweep_id()).Bind(3, request.sweep_id()).Run());
  v1::CancelSweepResponse response;
  response.set_jobs_cancelled(db_->Changes());
  SF_ASSIGN_OR_RETURN(Statement * mark,
                      Stmt(absl::StrCat("UPDATE sweeps SET state=", kSweepCancelled,
                                        ", finished_ms=? WHERE id=?")));
  SF_RETURN_IF_ERROR(mark->Bind(1, NowMs()).Bind(2, request.sweep_id()).Run());
  // Cancelled jobs may belong to finished or cancelled sweeps too: recount them all.
  SF_ASSIGN_OR_RETURN(std::vector<int64_t> sweeps, SweepsSharingJobsWith(request.sweep_id()));
  for (int64_t id : sweeps) SF_RETURN_IF_ERROR(Recount(id));
  SF_RETURN_IF_ERROR(AddSweepEvent(request.sweep_id(), v1::EVENT_KIND_SWEEP_CANCELLED,
                                   absl::StrCat(response.jobs_cancelled(), " jobs cancelled")));
  SF_RETURN_IF_ERROR(txn->Commit());
  event_cv_.SignalAll();
  return lock.Finish(response);
}

absl::StatusOr<v1::RetryFailedResponse> Scheduler::RetryFailed(
    const v1::RetryFailedRequest& request) {
  GroupCommit::Call lock(&commit_);
  SF_RETURN_IF_ERROR(SweepById(request.sweep_id()).status());
  SF_ASSIGN_OR_RETURN(auto txn, commit_.Begin());
  SF_ASSIGN_OR_RETURN(
      Statement * retry,
      Stmt(absl::StrCat("UPDATE jobs SET state=", kQueued,
                        ", attempts=0, next_attempt_ms=0, lease_token=NULL, "
                        "lease_expires_ms=NULL, updated_ms=? WHERE id IN (SELECT job_id FROM "
                        "sweep_jobs WHERE sweep_id=?) AND (state=",
                        kFailed, " OR (? AND state=", kCancelled, "))")));
  SF_RETURN_IF_ERROR(retry->Bind(1, NowMs())
                         .Bind(2, request.sweep_id())
                         .Bind(3, request.include_cancelled() ? 1 : 0)
                         .Run());
  v1::RetryFailedResponse response;
  response.set_jobs_requeued(db_->Changes());
  if (response.jobs_requeued() > 0) {
    SF_ASSIGN_OR_RETURN(std::vector<int64_t> sweeps, SweepsSharingJobsWith(request.sweep_id()));
    SF_ASSIGN_OR_RETURN(Statement * reopen,
                        Stmt(absl::StrCat("UPDATE sweeps SET state=", kSweepRunning,
                                          ", finished_ms=0 WHERE id=? AND (n_queued>0 OR id=?)")));
    for (int64_t id : sweeps) {
      SF_RETURN_IF_ERROR(Recount(id));
      SF_RETURN_IF_ERROR(reopen->Bind(1, id).Bind(2, request.sweep_id()).Run());
    }
  }
  SF_RETURN_IF_ERROR(AddSweepEvent(request.sweep_id(), v1::EVENT_KIND_JOBS_REQUEUED,
                                   absl::StrCat(response.jobs_requeued(), " jobs re-queued")));
  SF_RETURN_IF_ERROR(FinishSweepIfDone(request.sweep_id()));
  SF_RETURN_IF_ERROR(txn->Commit());
  NotifyLocked();
  event_cv_.SignalAll();
  return lock.Finish(response);
}

absl::StatusOr<v1::ListWorkersResponse> Scheduler::ListWorkers(
    const v1::ListWorkersRequest& request) {
  GroupCommit::Call lock(&commit_);
  const int64_t stale_before = NowMs() - 3 * absl::ToInt64Milliseconds(options_.lease_ttl);
  SF_ASSIGN_OR_RETURN(Statement * st,
                      Stmt("SELECT worker_id, devices, last_seen_ms, jobs_done, loaded_models "
                           "FROM workers WHERE ? OR last_seen_ms>=? ORDER BY worker_id"));
  st->Bind(1, request.include_stale() ? 1 : 0).Bind(2, stale_before);
  v1::ListWorkersResponse response;
  while (true) {
    SF_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    *response.add_workers() = ReadWorkerRow(*st);
  }
  st->Reset();
  SF_ASSIGN_OR_RETURN(
      Statement * keys,
      Stmt(absl::StrCat("SELECT key FROM jobs WHERE state=", kLeased, " AND lease_worker=?")));
  for (auto& info : *response.mutable_workers()) {
    keys->Bind(1, info.worker_id());
    while (true) {
      SF_ASSIGN_OR_RETURN(bool row, keys->Step());
      if (!row) break;
      info.add_leased_job_keys(keys->Text(0));
    }
    keys->Reset();
  }
  return lock.Finish(response);
}

absl::StatusOr<std::vector<v1::SweepEvent>> Scheduler::ReadEvents(int64_t sweep_id,
                                                                  int64_t after_sequence,
                                                                  int limit) {
  GroupCommit::Call lock(&commit_);
  SF_ASSIGN_OR_RETURN(v1::SweepCounts counts, Counts(sweep_id));
  SF_ASSIGN_OR_RETURN(Statement * st,
                      Stmt("SELECT seq, kind, job_key, worker_id, message, unix_ms FROM events "
                           "WHERE sweep_id=? AND seq>? ORDER BY seq LIMIT ?"));
  st->Bind(1, sweep_id).Bind(2, after_sequence).Bind(3, std::max(1, limit));
  std::vector<v1::SweepEvent> events;
  while (true) {
    SF_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    v1::SweepEvent& e = events.emplace_back();
    e.set_sequence(st->Int(0));
    e.set_sweep_id(sweep_id);
    e.set_kind(static_cast<v1::EventKind>(st->Int(1)));
    e.set_job_key(st->Text(2));
    e.set_worker_id(st->Text(3));
    e.set_message(st->Text(4));
    e.set_unix_ms(st->Int(5));
  }
  st->Reset();
  // Counts are the sweep's counts now (not at each event's time); the last event of a
  // batch carries them, which is what a progress display needs.
  if (!events.empty()) *events.back().mutable_counts() = counts;
  return lock.Finish(events);
}

void Scheduler::WaitForEvent(int64_t after_sequence, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const absl::Time deadline = absl::Now() + timeout;
  while (!shutdown_ && last_event_seq_ <= after_sequence) {
    if (event_cv_.WaitWithDeadline(&mu_, deadline)) break;
  }
}

int64_t Scheduler::LastEventSequence() const {
  absl::MutexLock lock(&mu_);
  return last_event_seq_;
}

absl::Status Scheduler::Results(const v1::ResultsRequest& request,
                                const ResultsSink& sink) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // A file database is read through its own read-only connection, without the
  // scheduler's lock: a slow client streaming results must not stall leases (WAL lets
  // readers run beside the writer). ":memory:" has only the writer connection.
  // The reader stays open so that its page cache stays warm between calls.
  std::optional<absl::MutexLock> lock;
  Database* db = nullptr;
  if (path_ == ":memory:") {
    lock.emplace(&mu_);
    db = db_.get();
  } else {
    lock.emplace(&reader_mu_);
    if (reader_ == nullptr) {
      SF_ASSIGN_OR_RETURN(reader_, Database::OpenReadOnly(path_));
    }
    db = reader_.get();
  }
  return ReadResults(db, CurrentSchemaVersion(), request, sink);
}

// ---------------------------------------------------------------- worker-facing

absl::StatusOr<v1::RegisterWorkerResponse> Scheduler::RegisterWorker(
    const v1::RegisterWorkerRequest& request) {
  SF_RETURN_IF_ERROR(CheckFieldLimits(request));
  if (!ValidName(request.worker_id())) {
    return absl::InvalidArgumentError(
        "worker_id must be 1-128 characters of [A-Za-z0-9._-] (e.g. host-slot)");
  }
  WorkerCaps caps;
  for (const v1::Device& d : request.devices()) {
    if (d.memory_bytes() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("device ", d.index(), " has negative memory_bytes"));
    }
    if (d.has_free_memory_bytes() &&
        (d.free_memory_bytes() < 0 || d.free_memory_bytes() > d.memory_bytes())) {
      return absl::InvalidArgumentError(
          absl::StrCat("device ", d.index(), " has free_memory_bytes ", d.free_memory_bytes(),
                       " outside [0, memory_bytes = ", d.memory_bytes(), "]"));
    }
  }
  caps = CapsFromDevices(request.devices());
  for (const std::string* field : {&request.slurm_job_id(), &request.slurm_node()}) {
    if (!field->empty() && !ValidName(*field)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "slurm_job_id and slurm_node must be 1-128 characters of [A-Za-z0-9._-] (got '",
          Truncate(*field, 128), "')"));
    }
  }
  caps.methods.assign(request.methods().begin(), request.methods().end());
  caps.loaded_models.assign(request.loaded_models().begin(), request.loaded_models().end());
  v1::WorkerInfo info;
  info.set_worker_id(request.worker_id());
  info.set_hostname(request.hostname());
  *info.mutable_devices() = request.devices();
  *info.mutable_methods() = request.methods();
  *info.mutable_backends() = request.backends();
  info.set_slurm_job_id(request.slurm_job_id());
  info.set_slurm_node(request.slurm_node());
  std::string blob;
  info.SerializeToString(&blob);
  GroupCommit::Call lock(&commit_);
  const int64_t now = NowMs();
  SF_ASSIGN_OR_RETURN(
      Statement * st,
      Stmt("INSERT INTO workers(worker_id, hostname, devices, max_device_memory, device_count, "
           "loaded_models, engine_version, registered_ms, last_seen_ms, slurm_job_id, slurm_node) "
           "VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(worker_id) DO UPDATE SET "
           "hostname=excluded.hostname, devices=excluded.devices, "
           "max_device_memory=excluded.max_device_memory, device_count=excluded.device_count, "
           "loaded_models=excluded.loaded_models, engine_version=excluded.engine_version, "
           "last_seen_ms=excluded.last_seen_ms, slurm_job_id=excluded.slurm_job_id, "
           "slurm_node=excluded.slurm_node"));
  SF_RETURN_IF_ERROR(st->Bind(1, request.worker_id())
                         .Bind(2, request.hostname())
                         .BindBlob(3, blob)
                         .Bind(4, caps.max_device_memory)
                         .Bind(5, caps.device_count)
                         .Bind(6, absl::StrJoin(caps.loaded_models, "\n"))
                         .Bind(7, request.engine_version())
                         .Bind(8, now)
                         .Bind(9, now)
                         .Bind(10, request.slurm_job_id())
                         .Bind(11, request.slurm_node())
                         .Run());
  workers_[request.worker_id()] = std::move(caps);
  // The new worker may hold jobs no worker could, or be the only one, too small for some.
  SF_RETURN_IF_ERROR(RefreshUnplaceable(nullptr));
  v1::RegisterWorkerResponse response;
  response.set_lease_ttl_ms(absl::ToInt64Milliseconds(options_.lease_ttl));
  response.set_max_lease_wait_ms(absl::ToInt64Milliseconds(options_.max_lease_wait));
  return lock.Finish(response);
}

absl::StatusOr<WorkerCaps> Scheduler::Caps(const std::string& worker_id) {
  auto it = workers_.find(worker_id);
  if (it != workers_.end()) return it->second;
  // After a coordinator restart the registration is in the database only.
  SF_ASSIGN_OR_RETURN(Statement * st,
                      Stmt("SELECT devices, max_device_memory, device_count, loaded_models FROM "
                           "workers WHERE worker_id=?"));
  st->Bind(1, worker_id);
  SF_ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) {
    st->Reset();
    return absl::FailedPreconditionError(absl::StrCat(
        "worker '", Truncate(worker_id, 128), "' is not registered: call RegisterWorker first"));
  }
  v1::WorkerInfo info;
  info.ParseFromString(st->Blob(0));
  WorkerCaps caps = CapsFromDevices(info.devices());
  caps.max_device_memory = st->Int(1);
  caps.device_count = static_cast<int>(st->Int(2));
  for (absl::string_view m : absl::StrSplit(st->Text(3), '\n', absl::SkipEmpty())) {
    caps.loaded_models.emplace_back(m);
  }
  st->Reset();
  caps.methods.assign(info.methods().begin(), info.methods().end());
  workers_[worker_id] = caps;
  return caps;
}

absl::Status Scheduler::RefreshUnplaceable(const std::vector<int64_t>* job_ids) {
  static constexpr absl::string_view kPrefix = "no live registered worker can hold this job: ";
  struct Registered {
    std::string id;
    WorkerCaps caps;
    int64_t memory = 0;  // over every GPU, to pick the worker whose refusal is reported
  };
  std::vector<Registered> workers;
  {
    SF_ASSIGN_OR_RETURN(Statement * st,
                        Stmt("SELECT worker_id, devices FROM workers WHERE last_seen_ms>=?"));
    st->Bind(1, NowMs() - 3 * absl::ToInt64Milliseconds(options_.lease_ttl));
    while (true) {
      SF_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      v1::WorkerInfo info;
      info.ParseFromString(st->Blob(1));
      Registered w{st->Text(0), CapsFromDevices(info.devices())};
      for (int64_t m : w.caps.device_memory) w.memory += m;
      workers.push_back(std::move(w));
    }
    st->Reset();
  }
  if (workers.empty()) return absl::OkStatus();  // nothing to compare with yet
  std::sort(workers.begin(), workers.end(),
            [](const Registered& a, const Registered& b) { return a.memory > b.memory; });

  struct Queued {
    int64_t id = 0;
    std::string key;
    int64_t gpus = 0, memory = 0;
    v1::JobSpec spec;
    std::string last_error;
  };
  std::vector<Queued> jobs;
  const std::string columns = "SELECT id, key, gpus, memory_bytes, spec, last_error FROM jobs ";
  SF_ASSIGN_OR_RETURN(Statement * all, Stmt(absl::StrCat(columns, "WHERE state=", kQueued)));
  SF_ASSIGN_OR_RETURN(Statement * one,
                      Stmt(absl::StrCat(columns, "WHERE state=", kQueued, " AND id=?")));
  auto read = [&jobs](Statement* st) -> absl::Status {
    while (true) {
      SF_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      Queued q{st->Int(0), st->Text(1), st->Int(2), st->Int(3)};
      const std::string blob = st->Blob(4);
      q.spec.ParseFromArray(blob.data(), static_cast<int>(blob.size()));
      q.last_error = st->Text(5);
      jobs.push_back(std::move(q));
    }
    st->Reset();
    return absl::OkStatus();
  };
  if (job_ids == nullptr) {
    SF_RETURN_IF_ERROR(read(all));
  } else {
    for (int64_t id : *job_ids) {
      one->Bind(1, id);
      SF_RETURN_IF_ERROR(read(one));
    }
  }

  SF_ASSIGN_OR_RETURN(Statement * mark, Stmt("UPDATE jobs SET last_error=? WHERE id=?"));
  for (const Queued& job : jobs) {
    const v1::GpuMemoryProfile* profile =
        job.spec.has_gpu_memory() ? &job.spec.gpu_memory() : nullptr;
    absl::Status refusal;  // from the worker with the most GPU memory
    bool held = false;
    for (const Registered& w : workers) {
      const absl::Status s = WorkerCanHold(w.caps, job.gpus, job.memory, profile);
      if (s.ok()) {
        held = true;
        break;
      }
      if (refusal.ok()) {
        refusal = Annotate(
            s, absl::StrCat("worker '", w.id, "' (", w.caps.device_count,
                            " GPU(s), the most memory of ", workers.size(), " live worker(s))"));
      }
    }
    const bool marked = absl::StartsWith(job.last_error, kPrefix);
    if (held) {
      if (marked) SF_RETURN_IF_ERROR(mark->Bind(1, std::string()).Bind(2, job.id).Run());
      continue;
    }
    const std::string message = absl::StrCat(kPrefix, refusal.message());
    if (job.last_error == message) continue;
    SF_LOG(WARNING) << "job " << job.key << ": " << message;
    SF_RETURN_IF_ERROR(mark->Bind(1, message).Bind(2, job.id).Run());
    SF_RETURN_IF_ERROR(AddJobEvent(job.id, v1::EVENT_KIND_JOB_UNPLACEABLE, job.key, "", message));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::Lease>> Scheduler::TryLease(const std::string& worker_id,
                                                             const WorkerCaps& caps) {
  const int64_t now = NowMs();
  PlacementPolicy policy;
  policy.model_affinity = options_.model_affinity;
  policy.longest_first = options_.longest_first;
  SF_ASSIGN_OR_RETURN(std::optional<PlacedJob> best, PlaceJob(statements_, caps, now, policy));
  if (!best) return std::optional<v1::Lease>();
  SF_ASSIGN_OR_RETURN(const std::string token, NewToken());
  const int64_t expires = now + absl::ToInt64Milliseconds(options_.lease_ttl);
  SF_ASSIGN_OR_RETURN(auto txn, commit_.Begin());
  SF_ASSIGN_OR_RETURN(Statement * grant,
                      Stmt("UPDATE jobs SET lease_token=?, lease_worker=?, lease_expires_ms=? "
                           "WHERE id=?"));
  SF_RETURN_IF_ERROR(
      grant->Bind(1, token).Bind(2, worker_id).Bind(3, expires).Bind(4, best->id).Run());
  SF_RETURN_IF_ERROR(SetState(best->id, kQueued, kLeased));
  SF_RETURN_IF_ERROR(AddJobEvent(best->id, v1::EVENT_KIND_JOB_LEASED, best->key, worker_id, ""));
  v1::Lease lease;
  lease.set_lease_token(token);
  lease.set_expires_unix_ms(expires);
  SF_ASSIGN_OR_RETURN(Statement * spec,
                      Stmt("SELECT spec, attempts + preemptions + 1 FROM jobs WHERE id=?"));
  spec->Bind(1, best->id);
  SF_ASSIGN_OR_RETURN(bool row, spec->Step());
  if (row) {
    lease.mutable_job()->ParseFromString(spec->Blob(0));
    lease.set_attempt(static_cast<int32_t>(spec->Int(1)));
  }
  spec->Reset();
  SF_ASSIGN_OR_RETURN(Statement * done,
                      Stmt("SELECT idx FROM samples WHERE job_id=? ORDER BY idx"));
  done->Bind(1, best->id);
  while (true) {
    SF_ASSIGN_OR_RETURN(bool srow, done->Step());
    if (!srow) break;
    lease.add_samples_done(static_cast<int32_t>(done->Int(0)));
  }
  done->Reset();
  SF_RETURN_IF_ERROR(txn->Commit());
  event_cv_.SignalAll();
  return std::optional<v1::Lease>(std::move(lease));
}

absl::StatusOr<v1::LeaseResponse> Scheduler::Lease(const v1::LeaseRequest& request,
                                                   const std::function<bool()>& abandoned) {
  SF_RETURN_IF_ERROR(CheckFieldLimits(request));
  const absl::Duration wait = std::min(absl::Milliseconds(std::max<int64_t>(0, request.wait_ms())),
                                       options_.max_lease_wait);
  const absl::Time deadline = absl::Now() + wait;
  GroupCommit::Call lock(&commit_);
  SF_ASSIGN_OR_RETURN(WorkerCaps caps, Caps(request.worker_id()));
  if (request.loaded_models_size() > 0) {
    caps.loaded_models.assign(request.loaded_models().begin(), request.loaded_models().end());
    workers_[request.worker_id()].loaded_models = caps.loaded_models;
  }
  while (true) {
    if (abandoned && abandoned()) return lock.Finish(v1::LeaseResponse());
    SF_RETURN_IF_ERROR(ExpireLocked(nullptr));
    SF_ASSIGN_OR_RETURN(std::optional<v1::Lease> lease, TryLease(request.worker_id(), caps));
    v1::LeaseResponse response;
    if (lease) {
      *response.mutable_lease() = std::move(*lease);
      // More jobs in the same answer, without waiting for them.
      const int max_leases = std::clamp(request.max_leases(), 1, kMaxLeasesPerCall);
      while (response.more_leases_size() + 1 < max_leases) {
        SF_ASSIGN_OR_RETURN(std::optional<v1::Lease> more, TryLease(request.worker_id(), caps));
        if (!more) break;
        *response.add_more_leases() = std::move(*more);
      }
      return lock.Finish(std::move(response));
    }
    if (shutdown_ || absl::Now() >= deadline) return lock.Finish(std::move(response));
    // Nobody may be left to commit what this call wrote while it sleeps.
    SF_RETURN_IF_ERROR(commit_.CommitBatch());
    // Backoff delays and lease expiry are in the injected clock's time: look again
    // at least every second rather than only when notified.
    work_cv_.WaitWithDeadline(&mu_, std::min(deadline, absl::Now() + absl::Seconds(1)));
  }
}

absl::StatusOr<v1::HeartbeatResponse> Scheduler::Heartbeat(const v1::HeartbeatRequest& request) {
  SF_RETURN_IF_ERROR(CheckFieldLimits(request));
  GroupCommit::Call lock(&commit_);
  SF_RETURN_IF_ERROR(Caps(request.worker_id()).status());
  SF_RETURN_IF_ERROR(ExpireLocked(nullptr));
  const int64_t now = NowMs();
  const int64_t expires = now + absl::ToInt64Milliseconds(options_.lease_ttl);
  v1::HeartbeatResponse response;
  response.set_lease_ttl_ms(absl::ToInt64Milliseconds(options_.lease_ttl));
  SF_ASSIGN_OR_RETURN(auto txn, commit_.Begin());
  SF_ASSIGN_OR_RETURN(Statement * renew, Stmt("UPDATE jobs SET lease_expires_ms=? WHERE id=?"));
  for (const v1::LeaseProgress& p : request.leases()) {
    auto job = LiveLease(p.lease_token());
    bool cancelled = false;
    if (job.ok() && job->worker != request.worker_id()) {
      job = absl::AbortedError("lease held by another worker");
    }
    if (!job.ok()) {
      cancelled = absl::StrContains(job.status().message(), "was cancelled");
      v1::LeaseStop* stop = response.add_stop();
      stop->set_lease_token(p.lease_token());
      stop->set_reason(cancelled ? v1::STOP_REASON_CANCELLED : v1::STOP_REASON_LEASE_LOST);
      continue;
    }
    SF_RETURN_IF_ERROR(renew->Bind(1, expires).Bind(2, job->id).Run());
  }
  SF_ASSIGN_OR_RETURN(Statement * seen,
                      Stmt("UPDATE workers SET last_seen_ms=?, loaded_models=? WHERE worker_id=?"));
  std::vector<std::string> models(request.loaded_models().begin(), request.loaded_models().end());
  if (models.empty()) models = workers_[request.worker_id()].loaded_models;
  workers_[request.worker_id()].loaded_models = models;
  SF_RETURN_IF_ERROR(
      seen->Bind(1, now).Bind(2, absl::StrJoin(models, "\n")).Bind(3, request.worker_id()).Run());
  SF_RETURN_IF_ERROR(txn->Commit());
  return lock.Finish(response);
}

absl::StatusOr<int64_t> Scheduler::SamplesTotal(int64_t job_id) {
  SF_ASSIGN_OR_RETURN(Statement * total, Stmt("SELECT samples_total FROM jobs WHERE id=?"));
  total->Bind(1, job_id);
  SF_ASSIGN_OR_RETURN(bool row, total->Step());
  const int64_t samples_total = row ? total->Int(0) : 0;
  total->Reset();
  return samples_total;
}

absl::Status Scheduler::CheckSampleRange(const LeasedJob& job, const SampleList& samples,
                                         int64_t samples_total) {
  for (const v1::SampleResult& s : samples) {
    if (s.index() >= samples_total) {
      return absl::InvalidArgumentError(absl::StrCat("sample index ", s.index(), " of job ",
                                                     job.key, " is out of range [0, ",
                                                     samples_total, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status Scheduler::StoreSamples(const LeasedJob& job, const std::string& lease_token,
                                     const SampleList& samples, int64_t now_ms, IndexList* accepted,
                                     IndexList* duplicates) {
  SF_ASSIGN_OR_RETURN(Statement * ins, Stmt(kInsertSampleSql));
  for (const v1::SampleResult& s : samples) {
    SF_RETURN_IF_ERROR(BindSample(*ins, job.id, s, lease_token, now_ms).Run());
    (db_->Changes() > 0 ? accepted : duplicates)->Add(s.index());
  }
  if (accepted->empty()) return absl::OkStatus();
  SF_ASSIGN_OR_RETURN(Statement * count,
                      Stmt("UPDATE jobs SET samples_done=samples_done+? WHERE id=?"));
  SF_RETURN_IF_ERROR(count->Bind(1, accepted->size()).Bind(2, job.id).Run());
  SF_ASSIGN_OR_RETURN(Statement * sweeps,
                      Stmt("UPDATE sweeps SET samples_done=samples_done+? WHERE id IN "
                           "(SELECT sweep_id FROM sweep_jobs WHERE job_id=?)"));
  return sweeps->Bind(1, accepted->size()).Bind(2, job.id).Run();
}

absl::StatusOr<v1::ReportSamplesResponse> Scheduler::ReportSamples(
    const v1::ReportSamplesRequest& request) {
  SF_RETURN_IF_ERROR(CheckFieldLimits(request));
  SF_RETURN_IF_ERROR(ValidateSamples(request.samples()));
  GroupCommit::Call lock(&commit_);
  SF_RETURN_IF_ERROR(ExpireLocked(nullptr));
  SF_ASSIGN_OR_RETURN(LeasedJob job, LiveLease(request.lease_token()));
  SF_ASSIGN_OR_RETURN(const int64_t samples_total, SamplesTotal(job.id));
  SF_RETURN_IF_ERROR(CheckSampleRange(job, request.samples(), samples_total));
  SF_ASSIGN_OR_RETURN(auto txn, commit_.Begin());
  v1::ReportSamplesResponse response;
  SF_RETURN_IF_ERROR(StoreSamples(job, request.lease_token(), request.samples(), NowMs(),
                                  response.mutable_accepted(), response.mutable_duplicates()));
  if (response.accepted_size() > 0) {
    SF_RETURN_IF_ERROR(AddJobEvent(job.id, v1::EVENT_KIND_JOB_PROGRESS, job.key, job.worker,
                                   absl::StrCat(response.accepted_size(), " samples")));
  }
  SF_RETURN_IF_ERROR(txn->Commit());
  if (response.accepted_size() > 0) event_cv_.SignalAll();
  return lock.Finish(response);
}

absl::StatusOr<v1::CompleteResponse> Scheduler::Complete(const v1::CompleteRequest& request) {
  SF_RETURN_IF_ERROR(CheckFieldLimits(request));
  const v1::JobResult& r = request.result();
  for (double x : {r.mean(), r.variance(), r.nominal_compression(), r.measured_compression(),
                   r.flops_prefill(), r.flops_decode(), r.flops_indexing(), r.wall_seconds(),
                   r.tokens_per_second()}) {
    if (!Finite(x)) {
      return absl::InvalidArgumentError(
          "result values must be finite (report a job with no valid sample through Fail)");
    }
  }
  if (r.n() < 0) return absl::InvalidArgumentError("result n is negative");
  SF_RETURN_IF_ERROR(ValidateSamples(request.samples()));
  GroupCommit::Call lock(&commit_);
  SF_RETURN_IF_ERROR(ExpireLocked(nullptr));
  SF_ASSIGN_OR_RETURN(LeasedJob job, LiveLease(request.lease_token()));
  SF_ASSIGN_OR_RETURN(const int64_t samples_total, SamplesTotal(job.id));
  SF_RETURN_IF_ERROR(CheckSampleRange(job, request.samples(), samples_total));
  const int64_t now = NowMs();
  SF_ASSIGN_OR_RETURN(auto txn, commit_.Begin());
  v1::CompleteResponse response;
  SF_RETURN_IF_ERROR(StoreSamples(job, request.lease_token(), request.samples(), now,
                                  response.mutable_accepted(), response.mutable_duplicates()));
  // The aggregate comes from the stored samples, not from the worker: after a resume
  // the last worker saw only the samples of its own attempt.
  SF_ASSIGN_OR_RETURN(Statement * agg,
                      Stmt("SELECT COUNT(*), COALESCE(AVG(score), 0), "
                           "COALESCE(SUM(score * score), 0) FROM samples WHERE job_id=?"));
  agg->Bind(1, job.id);
  SF_ASSIGN_OR_RETURN(bool agg_row, agg->Step());
  if (!agg_row) return absl::InternalError("sample aggregate returned no row");
  const int64_t n = agg->Int(0);
  const double mean = agg->Double(1);
  const double sum_sq = agg->Double(2);
  agg->Reset();
  // A worker may complete a job with samples missing (an evaluator that skipped some):
  // the job is DONE with what is stored, the shortfall is written where `status`,
  // events and results show it, and resubmitting the sweep runs the missing samples.
  const std::string shortfall =
      n < samples_total
          ? absl::StrCat("completed with ", n, " of ", samples_total,
                         " samples stored; resubmit the sweep to run the missing ones")
          : "";
  // Sample variance (n - 1), as the worker computes it.
  const double variance =
      n > 1 ? std::max(0.0, (sum_sq - static_cast<double>(n) * mean * mean) / (n - 1)) : 0.0;
  SF_ASSIGN_OR_RETURN(Statement * ins, Stmt(kInsertResultSql));
  SF_RETURN_IF_ERROR(
      BindResult(*ins, job.id, r, mean, variance, n, job.worker, request.lease_token(), now).Run());
  SF_ASSIGN_OR_RETURN(Statement * shape, Stmt(kStoreResultShapeSql));
  SF_RETURN_IF_ERROR(BindResultShape(*shape, r, job.id).Run());
  SF_ASSIGN_OR_RETURN(Statement * engine, Stmt(kStoreResultEngineSql));
  SF_RETURN_IF_ERROR(BindResultEngine(*engine, r, job.id).Run());
  SF_ASSIGN_OR_RETURN(Statement * close,
                      Stmt("UPDATE jobs SET lease_token=NULL, lease_expires_ms=NULL, "
                           "last_error=? WHERE id=?"));
  SF_RETURN_IF_ERROR(close->Bind(1, shortfall).Bind(2, job.id).Run());
  SF_RETURN_IF_ERROR(SetState(job.id, kLeased, kDone));
  SF_ASSIGN_OR_RETURN(Statement * worker,
                      Stmt("UPDATE workers SET jobs_done=jobs_done+1, last_seen_ms=? WHERE "
                           "worker_id=?"));
  SF_RETURN_IF_ERROR(worker->Bind(1, now).Bind(2, job.worker).Run());
  SF_RETURN_IF_ERROR(AddJobEvent(job.id, v1::EVENT_KIND_JOB_DONE, job.key, job.worker, shortfall));
  if (!shortfall.empty()) {
    SF_LOG(WARNING) << "job " << job.key << " from worker " << job.worker << ": " << shortfall;
  }
  SF_RETURN_IF_ERROR(FinishSweepsOf(job.id));
  SF_RETURN_IF_ERROR(txn->Commit());
  event_cv_.SignalAll();
  return lock.Finish(std::move(response));
}

absl::StatusOr<v1::FailResponse> Scheduler::Fail(const v1::FailRequest& request) {
  SF_RETURN_IF_ERROR(CheckFieldLimits(request));
  GroupCommit::Call lock(&commit_);
  SF_RETURN_IF_ERROR(ExpireLocked(nullptr));
  SF_ASSIGN_OR_RETURN(LeasedJob job, LiveLease(request.lease_token()));
  SF_ASSIGN_OR_RETURN(auto txn, commit_.Begin());
  v1::FailResponse response;
  std::string error = Truncate(request.error(), kMaxErrorLength);
  if (error.empty()) error = request.preempted() ? "preempted" : "failed (no error given)";
  SF_RETURN_IF_ERROR(EndAttempt(job, error, request.preempted(), request.permanent(), &response));
  SF_RETURN_IF_ERROR(txn->Commit());
  NotifyLocked();
  event_cv_.SignalAll();
  return lock.Finish(response);
}

}  // namespace sf::coordinator
