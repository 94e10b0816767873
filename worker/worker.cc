#include "worker/worker.h"

#include <algorithm>
#include <cmath>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/utf8.h"
#include "common/version.h"
#include "proto/job_convert.h"
#include "proto/model_shape_convert.h"

namespace sf::worker {

// One leased job being evaluated. The evaluator thread writes the fields marked
// "shared" under the worker's mutex; the control thread reads them under it.
struct Worker::Attempt {
  std::string token;
  JobSpec job;
  CancelFlag cancel;
  absl::Time next_heartbeat;
  // shared:
  bool eval_done = false;
  bool new_samples = false;
  absl::StatusOr<EvalSummary> result = absl::UnknownError("not run");
  std::vector<double> scores;
  int64_t tokens = 0;
  double wall_seconds = 0;
  int32_t samples_done = 0;
  // control thread only:
  bool lost = false;      // the coordinator took the lease back
  bool released = false;  // cancelled because the worker is stopping
};

namespace {

v1::SampleResult ToProto(const SampleOutcome& s) {
  v1::SampleResult p;
  p.set_index(s.index);
  p.set_score(s.score);
  // Generated text may stop mid-character; proto strings must be valid UTF-8.
  p.set_prediction(ToValidUtf8(s.prediction));
  p.set_target(ToValidUtf8(s.target));
  p.set_input_tokens(s.input_tokens);
  p.set_output_tokens(s.output_tokens);
  p.set_measured_density(s.measured_density);
  p.set_wall_seconds(s.wall_seconds);
  return p;
}

}  // namespace

NextStep NextStepAfter(const absl::Status& coordinator_error) {
  switch (coordinator_error.code()) {
    case absl::StatusCode::kOk:
    // Down, restarting or overloaded. A coordinator stopping (SIGTERM) cancels the
    // calls still in flight after its grace period: Cancelled is that too.
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kInternal:
      return NextStep::kRetry;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kNotFound:
      return NextStep::kReregister;
    case absl::StatusCode::kAborted:
      return NextStep::kDropLease;
    default:
      return NextStep::kGiveUp;
  }
}

namespace {

bool IsRetryable(const absl::Status& s) {
  const NextStep next = NextStepAfter(s);
  return next == NextStep::kRetry || next == NextStep::kReregister;
}

}  // namespace

Worker::Worker(WorkerOptions options, WorkerClient* client, Evaluator* evaluator, Outbox* outbox,
               Clock* clock)
    : options_(std::move(options)),
      client_(client),
      evaluator_(evaluator),
      outbox_(outbox),
      clock_(clock),
      backoff_(options_.backoff_initial),
      heartbeat_interval_(options_.default_heartbeat) {}

Worker::~Worker() = default;

bool Worker::stopping() const {
  absl::MutexLock lock(&mu_);
  return stop_requested_;
}

void Worker::Stop(StopMode mode) {
  {
    absl::MutexLock lock(&mu_);
    if (!stop_requested_ || mode == StopMode::kRelease) stop_mode_ = mode;
    stop_requested_ = true;
  }
  client_->CancelLeasePoll();
}

WorkerStats Worker::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void Worker::SleepUnlessStopping(absl::Duration d) {
  const absl::Time until = clock_->Now() + d;
  for (absl::Time now = clock_->Now(); now < until && !stopping(); now = clock_->Now()) {
    clock_->SleepFor(std::min(until - now, absl::Milliseconds(250)));
  }
}

void Worker::Backoff() {
  absl::Duration d;
  {
    absl::MutexLock lock(&mu_);
    d = backoff_;
    backoff_ = std::min(backoff_ * 2, options_.backoff_max);
  }
  SleepUnlessStopping(d);
}

void Worker::ResetBackoff() {
  absl::MutexLock lock(&mu_);
  backoff_ = options_.backoff_initial;
}

absl::Status Worker::Register() {
  v1::RegisterWorkerRequest request;
  request.set_worker_id(options_.worker_id);
  request.set_hostname(options_.hostname);
  for (const v1::Device& d : options_.devices) *request.add_devices() = d;
  for (const std::string& m : evaluator_->Methods()) request.add_methods(m);
  for (const std::string& b : evaluator_->Backends()) request.add_backends(b);
  request.set_engine_version(options_.engine_version);
  request.set_slurm_job_id(options_.slurm_job_id);
  request.set_slurm_node(options_.slurm_node);
  while (true) {
    if (stopping()) return absl::CancelledError("stopping");
    absl::StatusOr<v1::RegisterWorkerResponse> r = client_->RegisterWorker(request);
    if (r.ok()) {
      absl::MutexLock lock(&mu_);
      if (registered_once_) ++stats_.reconnects;
      registered_once_ = true;
      need_register_ = false;
      if (r->lease_ttl_ms() > 0) heartbeat_interval_ = absl::Milliseconds(r->lease_ttl_ms()) / 3;
      backoff_ = options_.backoff_initial;
      return absl::OkStatus();
    }
    if (!IsRetryable(r.status()) && !absl::IsCancelled(r.status())) {
      return Annotate(r.status(), "registering with the coordinator");
    }
    SF_LOG(WARNING) << "worker " << options_.worker_id << ": coordinator not reachable ("
                    << r.status().message() << "); retrying";
    Backoff();
  }
}

absl::Status Worker::Run() {
  if (options_.worker_id.empty()) return absl::InvalidArgumentError("worker_id is required");
  absl::Status s = Register();
  if (absl::IsCancelled(s)) return absl::OkStatus();
  SF_RETURN_IF_ERROR(s);
  SF_RETURN_IF_ERROR(RecoverOutbox());
  int64_t leased = 0;
  while (!stopping()) {
    if (options_.max_jobs > 0 && leased >= options_.max_jobs) break;
    bool reregister;
    {
      absl::MutexLock lock(&mu_);
      reregister = need_register_;
    }
    if (reregister) {
      s = Register();
      if (absl::IsCancelled(s)) break;
      SF_RETURN_IF_ERROR(s);
    }
    v1::LeaseRequest request;
    request.set_worker_id(options_.worker_id);
    request.set_wait_ms(absl::ToInt64Milliseconds(options_.lease_wait));
    absl::StatusOr<v1::LeaseResponse> r = client_->Lease(request);
    if (!r.ok()) {
      if (stopping()) break;
      if (NextStepAfter(r.status()) == NextStep::kGiveUp) {
        return Annotate(r.status(), "asking the coordinator for a job");
      }
      if (NextStepAfter(r.status()) != NextStep::kReregister) {
        SF_LOG(WARNING) << "worker " << options_.worker_id << ": " << r.status().message();
      }
      {
        // A restarted coordinator may not know us any more; registering again is
        // cheap and covers a coordinator that lost its memory.
        absl::MutexLock lock(&mu_);
        need_register_ = true;
      }
      Backoff();
      continue;
    }
    ResetBackoff();
    if (!r->has_lease()) continue;
    ++leased;
    SF_RETURN_IF_ERROR(RunLease(r->lease()));
    {
      absl::MutexLock lock(&mu_);
      if (!outbox_error_.ok()) return outbox_error_;  // the evaluator's samples had no home
    }
  }
  return absl::OkStatus();
}

absl::Status Worker::RecoverOutbox() {
  absl::StatusOr<std::vector<HeldLease>> held_leases = outbox_->Leases();
  if (!held_leases.ok()) return OutboxFailed(held_leases.status());
  const std::vector<HeldLease>& leases = *held_leases;
  for (const HeldLease& held : leases) {
    SF_LOG(INFO) << "worker " << options_.worker_id << ": releasing lease of job " << held.job_key
                 << " left by a previous run";
    absl::Status s = Retry([&] { return Flush(held.lease_token); }, nullptr);
    if (s.ok()) {
      v1::FailRequest fail;
      fail.set_lease_token(held.lease_token);
      fail.set_error("worker restarted; the samples it stored are kept");
      fail.set_preempted(true);
      s = Retry([&] { return client_->Fail(fail).status(); }, nullptr);
    }
    if (outbox_failed()) return s;
    if (stopping() && !s.ok() && !absl::IsAborted(s)) return absl::OkStatus();
    if (!s.ok() && !absl::IsAborted(s)) {
      // The coordinator refuses what the old lease holds: keeping it would block every
      // later start, and the job runs again from what the coordinator stored.
      SF_LOG(WARNING) << "worker " << options_.worker_id << ": dropping the lease of job "
                      << held.job_key << " left by a previous run: " << s.message();
    }
    if (absl::Status r = outbox_->RemoveLease(held.lease_token); !r.ok()) return OutboxFailed(r);
  }
  return absl::OkStatus();
}

absl::Status Worker::OutboxFailed(const absl::Status& error) {
  absl::Status s = absl::FailedPreconditionError(
      absl::StrCat(error.message(),
                   "; the worker stops: move the outbox aside (it holds samples not yet "
                   "sent) or pass another --outbox"));
  absl::MutexLock lock(&mu_);
  if (outbox_error_.ok()) outbox_error_ = s;
  return outbox_error_;
}

bool Worker::outbox_failed() const {
  absl::MutexLock lock(&mu_);
  return !outbox_error_.ok();
}

absl::Status Worker::Flush(const std::string& token, int keep) {
  while (true) {
    absl::StatusOr<std::vector<v1::SampleResult>> read =
        outbox_->Pending(token, options_.report_batch + keep);
    if (!read.ok()) return OutboxFailed(read.status());
    std::vector<v1::SampleResult> pending = *std::move(read);
    if (pending.size() <= static_cast<size_t>(keep)) return absl::OkStatus();
    pending.resize(pending.size() - keep);
    v1::ReportSamplesRequest request;
    request.set_lease_token(token);
    for (v1::SampleResult& s : pending) *request.add_samples() = std::move(s);
    SF_ASSIGN_OR_RETURN(v1::ReportSamplesResponse response, client_->ReportSamples(request));
    std::vector<int32_t> acked(response.accepted().begin(), response.accepted().end());
    acked.insert(acked.end(), response.duplicates().begin(), response.duplicates().end());
    {
      absl::MutexLock lock(&mu_);
      stats_.samples_sent += response.accepted_size();
      stats_.samples_duplicate += response.duplicates_size();
    }
    if (acked.empty()) {
      return absl::InternalError("ReportSamples acknowledged none of the samples sent");
    }
    if (absl::Status s = outbox_->Ack(token, acked); !s.ok()) return OutboxFailed(s);
  }
}

absl::Status Worker::Retry(const std::function<absl::Status()>& call, Attempt* attempt) {
  while (true) {
    absl::Status s = call();
    if (s.ok() || !IsRetryable(s) || outbox_failed()) {
      if (s.ok()) ResetBackoff();
      return s;
    }
    if (NextStepAfter(s) == NextStep::kReregister) {
      absl::MutexLock lock(&mu_);
      need_register_ = true;
    }
    if (stopping()) return s;
    SF_LOG(WARNING) << "worker " << options_.worker_id << ": " << s.message() << "; retrying";
    Backoff();
    if (attempt != nullptr) MaybeHeartbeat(*attempt);
    if (attempt != nullptr && attempt->lost) return absl::AbortedError("lease lost");
  }
}

void Worker::MaybeHeartbeat(Attempt& attempt) {
  const absl::Time now = clock_->Now();
  if (now < attempt.next_heartbeat) return;
  v1::HeartbeatRequest request;
  request.set_worker_id(options_.worker_id);
  v1::LeaseProgress* progress = request.add_leases();
  progress->set_lease_token(attempt.token);
  absl::Duration interval;
  {
    absl::MutexLock lock(&mu_);
    progress->set_samples_done(attempt.samples_done);
    if (attempt.wall_seconds > 0) {
      progress->set_tokens_per_second(static_cast<double>(attempt.tokens) / attempt.wall_seconds);
    }
    interval = heartbeat_interval_;
  }
  absl::StatusOr<v1::HeartbeatResponse> r = client_->Heartbeat(request);
  if (!r.ok()) {
    // Try again soon: the lease is still ours until it expires on the coordinator.
    attempt.next_heartbeat = now + std::min(interval, absl::Seconds(1));
    if (absl::IsFailedPrecondition(r.status())) {
      absl::MutexLock lock(&mu_);
      need_register_ = true;
    }
    return;
  }
  if (r->lease_ttl_ms() > 0) {
    absl::MutexLock lock(&mu_);
    heartbeat_interval_ = absl::Milliseconds(r->lease_ttl_ms()) / 3;
    interval = heartbeat_interval_;
  }
  attempt.next_heartbeat = now + interval;
  for (const v1::LeaseStop& stop : r->stop()) {
    if (stop.lease_token() != attempt.token) continue;
    SF_LOG(INFO) << "worker " << options_.worker_id << ": coordinator stopped job "
                 << attempt.job.key << " ("
                 << (stop.reason() == v1::STOP_REASON_CANCELLED ? "cancelled" : "lease lost")
                 << ")";
    attempt.lost = true;
    attempt.cancel.Cancel();
  }
}

absl::Status Worker::RunLease(const v1::Lease& lease) {
  Attempt attempt;
  attempt.token = lease.lease_token();
  attempt.job = JobSpecFromProto(lease.job());
  if (absl::Status s = outbox_->AddLease(attempt.token, attempt.job.key); !s.ok()) {
    return OutboxFailed(s);
  }
  SF_LOG(INFO) << "worker " << options_.worker_id << ": leased job " << attempt.job.key
               << " (attempt " << lease.attempt() << ", " << lease.samples_done_size() << "/"
               << attempt.job.task.samples << " samples already stored)";

  absl::Status can_run = evaluator_->CanRun(attempt.job);
  if (!can_run.ok()) return Close(attempt, can_run);

  absl::flat_hash_set<int32_t> done(lease.samples_done().begin(), lease.samples_done().end());
  attempt.samples_done = static_cast<int32_t>(done.size());
  attempt.next_heartbeat = clock_->Now() + [&] {
    absl::MutexLock lock(&mu_);
    return heartbeat_interval_;
  }();

  SampleSink sink = [this, &attempt](const SampleOutcome& outcome) -> absl::Status {
    if (absl::Status s = outbox_->Add(attempt.token, ToProto(outcome)); !s.ok()) {
      return OutboxFailed(s);
    }
    absl::MutexLock lock(&mu_);
    attempt.scores.push_back(outcome.score);
    attempt.tokens += outcome.input_tokens + outcome.output_tokens;
    attempt.wall_seconds += outcome.wall_seconds;
    ++attempt.samples_done;
    attempt.new_samples = true;
    return absl::OkStatus();
  };
  std::thread eval([this, &attempt, &done, &sink] {
    absl::StatusOr<EvalSummary> result = evaluator_->Run(attempt.job, done, sink, attempt.cancel);
    absl::MutexLock lock(&mu_);
    attempt.result = std::move(result);
    attempt.eval_done = true;
  });

  bool flush_failed_unavailable = false;
  while (true) {
    bool eval_done, new_samples;
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this, &attempt]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return attempt.eval_done || attempt.new_samples ||
               (stop_requested_ && stop_mode_ == StopMode::kRelease && !attempt.released);
      };
      mu_.AwaitWithTimeout(absl::Condition(&wake), options_.poll_slice);
      eval_done = attempt.eval_done;
      new_samples = attempt.new_samples;
      attempt.new_samples = false;
      if (stop_requested_ && stop_mode_ == StopMode::kRelease && !attempt.released) {
        attempt.released = true;
        attempt.cancel.Cancel();
      }
    }
    // Once the evaluation ended, Close sends what is left (with Complete).
    if ((new_samples || flush_failed_unavailable) && !attempt.lost && !eval_done) {
      absl::Status s = Flush(attempt.token);
      flush_failed_unavailable = false;
      if (absl::IsAborted(s)) {
        attempt.lost = true;
        attempt.cancel.Cancel();
      } else if (!s.ok() && !outbox_failed() && IsRetryable(s)) {
        flush_failed_unavailable = true;  // kept in the outbox; try again later
        if (NextStepAfter(s) == NextStep::kReregister) {
          absl::MutexLock lock(&mu_);
          need_register_ = true;
        }
      } else if (!s.ok()) {
        attempt.cancel.Cancel();
        eval.join();
        return s;  // the outbox failed, or the coordinator refuses what it is sent
      }
    }
    if (!attempt.lost) MaybeHeartbeat(attempt);
    if (eval_done) break;
  }
  eval.join();
  absl::Status eval_status = attempt.result.status();
  return Close(attempt, eval_status);
}

absl::Status Worker::CompleteAttempt(Attempt& attempt) {
  const std::string& token = attempt.token;
  const EvalSummary& summary = *attempt.result;
  v1::CompleteRequest request;
  request.set_lease_token(token);
  // The samples still pending (at most report_batch after Close's flush) ride along.
  absl::StatusOr<std::vector<v1::SampleResult>> last =
      outbox_->Pending(token, options_.report_batch);
  if (!last.ok()) return OutboxFailed(last.status());
  for (v1::SampleResult& sample : *last) *request.add_samples() = std::move(sample);
  v1::JobResult* r = request.mutable_result();
  r->set_metric(summary.metric);
  double mean = 0, var = 0;
  {
    absl::MutexLock lock(&mu_);
    const auto n = static_cast<double>(attempt.scores.size());
    for (double x : attempt.scores) mean += x;
    if (n > 0) mean /= n;
    for (double x : attempt.scores) var += (x - mean) * (x - mean);
    if (n > 1) var /= n - 1;
    r->set_n(static_cast<int64_t>(attempt.scores.size()));
    r->set_wall_seconds(attempt.wall_seconds);
  }
  r->set_mean(mean);
  r->set_variance(var);
  r->set_nominal_compression(summary.nominal_compression);
  r->set_measured_compression(summary.measured_compression);
  r->set_flops_prefill(summary.flops_prefill);
  r->set_flops_decode(summary.flops_decode);
  r->set_flops_indexing(summary.flops_indexing);
  r->set_tokens_per_second(summary.tokens_per_second);
  r->set_gpu_name(summary.gpu_name);
  r->set_compute_dtype(summary.compute_dtype);
  r->set_prefill_attention(summary.prefill_attention);
  r->set_decode_attention(summary.decode_attention);
  r->set_prefill_seconds(summary.prefill_seconds);
  r->set_decode_seconds(summary.decode_seconds);
  r->set_estimation_seconds(summary.estimation_seconds);
  r->set_attention_kernels(summary.attention_kernels);
  r->set_engine_version(options_.engine_version);
  r->set_git_commit(kGitCommit);
  r->set_samples_evaluated(r->n());
  if (summary.model) *r->mutable_model_shape() = ModelShapeToProto(*summary.model);
  v1::CompleteResponse response;
  absl::Status s = Retry(
      [&] {
        absl::StatusOr<v1::CompleteResponse> answer = client_->Complete(request);
        if (answer.ok()) response = *std::move(answer);
        return answer.status();
      },
      &attempt);
  if (s.ok()) {
    absl::MutexLock lock(&mu_);
    ++stats_.jobs_completed;
    stats_.samples_sent += response.accepted_size();
    stats_.samples_duplicate += response.duplicates_size();
  }
  return s;
}

absl::Status Worker::Close(Attempt& attempt, const absl::Status& eval_status) {
  const std::string& token = attempt.token;
  if (attempt.lost) {
    SF_LOG(INFO) << "worker " << options_.worker_id << ": dropped job " << attempt.job.key;
    {
      absl::MutexLock lock(&mu_);
      ++stats_.jobs_lost;
    }
    if (absl::Status r = outbox_->RemoveLease(token); !r.ok()) return OutboxFailed(r);
    return absl::OkStatus();
  }
  // Every stored sample goes out before (or, the last batch of a finished job, with)
  // the call that closes the attempt, so that the aggregate covers them all and a retry
  // resumes after the last one.
  const int keep = eval_status.ok() ? options_.report_batch : 0;
  absl::Status s = Retry([&] { return Flush(token, keep); }, &attempt);
  if (!s.ok() && !absl::IsAborted(s)) {
    // Stopping with the coordinator down: the outbox keeps them for the next run.
    if (IsRetryable(s) && !outbox_failed()) return absl::OkStatus();
    return s;
  }
  if (s.ok() && eval_status.ok()) {
    s = CompleteAttempt(attempt);
  } else if (s.ok()) {
    v1::FailRequest request;
    request.set_lease_token(token);
    const bool preempted = attempt.released && absl::IsCancelled(eval_status);
    request.set_preempted(preempted);
    request.set_permanent(!preempted && IsPermanentEvalError(eval_status));
    request.set_error(preempted ? "worker stopping (SIGTERM); the samples it finished are kept"
                                : std::string(eval_status.message()));
    s = Retry([&] { return client_->Fail(request).status(); }, &attempt);
    if (s.ok()) {
      absl::MutexLock lock(&mu_);
      ++(preempted ? stats_.jobs_released : stats_.jobs_failed);
    }
    if (!preempted) {
      SF_LOG(WARNING) << "worker " << options_.worker_id << ": job " << attempt.job.key
                      << " failed: " << eval_status.message();
    }
  }
  if (absl::IsAborted(s)) {
    absl::MutexLock lock(&mu_);
    ++stats_.jobs_lost;
  } else if (!s.ok()) {
    return IsRetryable(s) ? absl::OkStatus() : s;  // left in the outbox for the next run
  }
  if (absl::Status r = outbox_->RemoveLease(token); !r.ok()) return OutboxFailed(r);
  return absl::OkStatus();
}

}  // namespace sf::worker
