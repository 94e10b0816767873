#include "cli/sweep_ops.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/spec.h"
#include "common/status.h"
#include "common/sweep_name.h"
#include "proto/job_convert.h"

namespace sf::cli {

absl::StatusOr<v1::SubmitSweepRequest> BuildSubmitRequest(const SubmitFlags& flags) {
  if (!flags.name.empty() && !IsValidSweepName(flags.name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--name '", flags.name.substr(0, 64), "' must be ", kSweepNameRule));
  }
  std::ifstream in(flags.spec_path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read spec file ", flags.spec_path));
  }
  std::stringstream text;
  text << in.rdbuf();
  // Relative paths resolve against the current folder, as in `sfctl validate`
  // (docs/spec.md), so validating and running a spec mean the same models.
  SpecOptions options;
  SF_ASSIGN_OR_RETURN(SweepSpec spec, ParseSweepSpec(text.str(), flags.spec_path, options));
  SF_ASSIGN_OR_RETURN(std::vector<JobSpec> jobs, ExpandSweep(spec));
  v1::SubmitSweepRequest request;
  request.set_sweep_name(!flags.name.empty() ? flags.name
                         : !spec.name.empty()
                             ? spec.name
                             : std::filesystem::path(flags.spec_path).stem().string());
  request.set_force(flags.force);
  request.set_priority(flags.priority);
  request.set_max_attempts(flags.max_attempts);
  request.set_spec_yaml(text.str());
  for (const JobSpec& job : jobs) *request.add_jobs() = JobSpecToProto(job);
  return request;
}

absl::StatusOr<v1::SubmitSweepResponse> Submit(Remote& remote,
                                               const v1::SubmitSweepRequest& request, Io& io) {
  grpc::ClientContext context;
  remote.Prepare(&context, absl::Seconds(120));
  v1::SubmitSweepResponse response;
  grpc::Status status = remote.stub().SubmitSweep(&context, request, &response);
  if (!status.ok()) return remote.Error(status, "SubmitSweep");
  io.out << "sweep " << response.sweep_id() << " '" << request.sweep_name()
         << "': " << response.jobs_total() << " jobs (" << response.jobs_queued() << " new, "
         << response.jobs_reused() << " reused)\n";
  return response;
}

namespace {

// The sweep's state and counts now (GetSweep).
absl::StatusOr<v1::Sweep> CurrentSweep(Remote& remote, int64_t sweep_id) {
  grpc::ClientContext context;
  remote.Prepare(&context, absl::ZeroDuration());
  v1::GetSweepRequest request;
  request.set_id(sweep_id);
  v1::Sweep sweep;
  grpc::Status status = remote.stub().GetSweep(&context, request, &sweep);
  if (!status.ok()) return remote.Error(status, "GetSweep");
  return sweep;
}

}  // namespace

absl::StatusOr<v1::Sweep> WatchUntilDone(Remote& remote, int64_t sweep_id, ProgressDisplay& display,
                                         const WatchOptions& options, Clock* clock) {
  int64_t after = 0;
  absl::Duration backoff = options.backoff_initial;
  absl::Time down_since = absl::InfiniteFuture();
  v1::Sweep sweep;
  bool have_sweep = false;
  while (true) {
    if (!have_sweep) {
      grpc::ClientContext context;
      remote.Prepare(&context, absl::ZeroDuration(), /*wait_for_ready=*/true);
      v1::GetSweepRequest request;
      request.set_id(sweep_id);
      grpc::Status status = remote.stub().GetSweep(&context, request, &sweep);
      if (status.ok()) {
        have_sweep = true;
        display.Update(sweep);
        if (sweep.state() != v1::SWEEP_STATE_RUNNING) return sweep;
      } else if (status.error_code() != grpc::StatusCode::UNAVAILABLE &&
                 status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
        return remote.Error(status, "GetSweep");
      }
    }
    if (have_sweep) {
      grpc::ClientContext context;
      // No deadline: a sweep may run for days. Keepalive notices a dead coordinator.
      remote.Prepare(&context, absl::Hours(24 * 365), /*wait_for_ready=*/true);
      v1::WatchSweepRequest request;
      request.set_sweep_id(sweep_id);
      request.set_after_sequence(after);
      auto reader = remote.stub().WatchSweep(&context, request);
      v1::SweepEvent event;
      while (reader->Read(&event)) {
        down_since = absl::InfiniteFuture();
        backoff = options.backoff_initial;
        after = std::max(after, event.sequence());
        *sweep.mutable_counts() = event.counts();
        if (event.kind() == v1::EVENT_KIND_SWEEP_FINISHED ||
            event.kind() == v1::EVENT_KIND_SWEEP_CANCELLED) {
          // The replayed history of a sweep that was reopened since (resubmitted with
          // more jobs, retried, forced) holds old terminal events: only the sweep's
          // state now says whether it is over.
          absl::StatusOr<v1::Sweep> current = CurrentSweep(remote, sweep_id);
          if (current.ok() && current->state() != v1::SWEEP_STATE_RUNNING) {
            display.Update(*current);
            context.TryCancel();
            reader->Finish().IgnoreError();
            return *current;
          }
          if (!current.ok()) {
            after = event.sequence() - 1;  // reconnect, then read this event again
            context.TryCancel();
            break;
          }
          sweep.set_state(v1::SWEEP_STATE_RUNNING);
        } else if (event.kind() == v1::EVENT_KIND_JOBS_REQUEUED) {
          sweep.set_state(v1::SWEEP_STATE_RUNNING);
        }
        display.Update(sweep);
      }
      grpc::Status status = reader->Finish();
      if (status.ok()) {
        // The server ends the stream once the sweep is over and every event was sent.
        absl::StatusOr<v1::Sweep> current = CurrentSweep(remote, sweep_id);
        if (current.ok() && current->state() != v1::SWEEP_STATE_RUNNING) {
          display.Update(*current);
          return *current;
        }
      } else if (status.error_code() != grpc::StatusCode::UNAVAILABLE &&
                 status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED &&
                 status.error_code() != grpc::StatusCode::CANCELLED) {
        return remote.Error(status, "WatchSweep");
      }
      // The stream ended without the sweep finishing: the coordinator went away or
      // restarted. Reconnect and resume after the last event seen.
    }
    const absl::Time now = clock->Now();
    if (down_since == absl::InfiniteFuture()) down_since = now;
    if (now - down_since > options.reconnect_limit) {
      return absl::UnavailableError(
          absl::StrCat("lost the coordinator at ", remote.address(), " for more than ",
                       absl::FormatDuration(options.reconnect_limit), "; run 'sfctl watch ",
                       sweep_id, "' again once it is back"));
    }
    clock->SleepFor(backoff);
    backoff = std::min(backoff * 2, options.backoff_max);
  }
}

void AddResultFilterFlags(CLI::App* cmd, ResultFilters* f) {
  cmd->add_option("--sweep", f->sweep, "only this sweep (id or name)");
  cmd->add_option("--model", f->models, "model name (repeatable)");
  cmd->add_option("--length", f->lengths, "sequence length (repeatable)");
  cmd->add_option("--method", f->methods, "attention method in either phase (repeatable)");
  cmd->add_option("--prefill", f->prefill, "prefill method (repeatable)");
  cmd->add_option("--decode", f->decode, "decode method (repeatable)");
  cmd->add_option("--task", f->tasks, "task name (repeatable)");
  cmd->add_option("--seed", f->seeds, "seed (repeatable)");
  cmd->add_option("--compression", f->compressions,
                  "compression target, either phase; dense is 1 (repeatable)");
  cmd->add_option("--min-compression", f->min_compression, "lowest compression");
  cmd->add_option("--max-compression", f->max_compression, "highest compression");
  cmd->add_option("--limit", f->limit, "at most this many rows (0 = all)");
}

namespace {

Cell OptionalDouble(bool has, double v) { return has ? Cell(v) : Cell(std::monostate()); }

}  // namespace

namespace {

// The Results request of `f` (the sweep named by id or name is looked up first).
absl::StatusOr<v1::ResultsRequest> ResultsRequestFor(Remote& remote, const ResultFilters& f) {
  v1::ResultsRequest request;
  if (!f.sweep.empty()) {
    SF_ASSIGN_OR_RETURN(v1::Sweep sweep, remote.FindSweep(f.sweep));
    request.set_sweep_id(sweep.id());
  }
  for (const auto& m : f.models) request.add_models(m);
  for (int64_t l : f.lengths) request.add_sequence_lengths(l);
  for (const auto& m : f.methods) request.add_methods(m);
  for (const auto& m : f.prefill) request.add_prefill_methods(m);
  for (const auto& m : f.decode) request.add_decode_methods(m);
  for (const auto& t : f.tasks) request.add_tasks(t);
  for (uint64_t s : f.seeds) request.add_seeds(s);
  for (double c : f.compressions) request.add_compressions(c);
  if (f.min_compression > 0) request.set_min_compression(f.min_compression);
  if (f.max_compression > 0) request.set_max_compression(f.max_compression);
  request.set_limit(f.limit);
  return request;
}

// Streams the Results of `request` to `on_row`, row by row.
absl::Status ForEachResult(Remote& remote, const v1::ResultsRequest& request,
                           const std::function<void(const v1::ResultRow&)>& on_row) {
  grpc::ClientContext context;
  remote.Prepare(&context, absl::Seconds(300));
  auto reader = remote.stub().Results(&context, request);
  v1::ResultsResponse page;
  while (reader->Read(&page)) {
    for (const v1::ResultRow& row : page.rows()) on_row(row);
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return remote.Error(status, "Results");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Table> FetchResults(Remote& remote, const ResultFilters& f) {
  SF_ASSIGN_OR_RETURN(v1::ResultsRequest request, ResultsRequestFor(remote, f));
  Table table;
  table.columns = {"key",
                   "model",
                   "length",
                   "prefill",
                   "prefill_compression",
                   "decode",
                   "decode_compression",
                   "task",
                   "seed",
                   "metric",
                   "n",
                   "mean",
                   "stderr",
                   "measured_compression",
                   "wall_seconds",
                   "worker"};
  SF_RETURN_IF_ERROR(ForEachResult(remote, request, [&table](const v1::ResultRow& row) {
    const v1::JobSpec& j = row.job();
    const v1::JobResult& r = row.result();
    const double stderr_mean =
        r.n() > 1 ? std::sqrt(r.variance() / static_cast<double>(r.n())) : 0.0;
    table.rows.push_back(
        {j.key().substr(0, 12), j.model().name(), j.sequence_length(), j.prefill().name(),
         OptionalDouble(j.prefill().has_compression(), j.prefill().compression()),
         j.decode().name(), OptionalDouble(j.decode().has_compression(), j.decode().compression()),
         j.task().name(), static_cast<int64_t>(j.seed()), r.metric(), r.n(), r.mean(), stderr_mean,
         r.measured_compression(), r.wall_seconds(), r.worker_id()});
  }));
  return table;
}

absl::StatusOr<Table> FetchSamples(Remote& remote, const ResultFilters& f) {
  SF_ASSIGN_OR_RETURN(v1::ResultsRequest request, ResultsRequestFor(remote, f));
  request.set_include_unfinished(true);  // samples stored by jobs still running or failed
  request.set_include_samples(true);
  request.set_include_sample_text(true);
  Table table;
  table.columns = {"job_key",
                   "model",
                   "length",
                   "prefill",
                   "prefill_compression",
                   "decode",
                   "decode_compression",
                   "task",
                   "seed",
                   "sample",
                   "score",
                   "prediction",
                   "target",
                   "input_tokens",
                   "output_tokens",
                   "measured_density",
                   "wall_seconds"};
  SF_RETURN_IF_ERROR(ForEachResult(remote, request, [&table](const v1::ResultRow& row) {
    const v1::JobSpec& j = row.job();
    for (const v1::SampleResult& s : row.samples()) {
      table.rows.push_back(
          {j.key(), j.model().name(), j.sequence_length(), j.prefill().name(),
           OptionalDouble(j.prefill().has_compression(), j.prefill().compression()),
           j.decode().name(),
           OptionalDouble(j.decode().has_compression(), j.decode().compression()), j.task().name(),
           static_cast<int64_t>(j.seed()), static_cast<int64_t>(s.index()), s.score(),
           s.prediction(), s.target(), s.input_tokens(), s.output_tokens(), s.measured_density(),
           s.wall_seconds()});
    }
  }));
  return table;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> FetchFailedJobs(Remote& remote,
                                                                                 int64_t sweep_id,
                                                                                 int64_t limit) {
  v1::ResultsRequest request;
  request.set_sweep_id(sweep_id);
  request.set_include_unfinished(true);
  request.add_states(v1::JOB_STATE_FAILED);
  request.set_limit(limit);
  std::vector<std::pair<std::string, std::string>> failed;
  SF_RETURN_IF_ERROR(ForEachResult(remote, request, [&failed](const v1::ResultRow& row) {
    failed.emplace_back(row.job().key(), row.last_error());
  }));
  return failed;
}

void RunSweepAction(const RemoteFlags& flags, const std::string& sweep, Io& io, int* exit_code,
                    const SweepAction& action) {
  auto remote = Remote::Connect(flags);
  if (!remote.ok()) {
    *exit_code = ReportStatus(remote.status(), io);
    return;
  }
  absl::StatusOr<v1::Sweep> found = (*remote)->FindSweep(sweep);
  if (!found.ok()) {
    *exit_code = ReportStatus(found.status(), io);
    return;
  }
  absl::StatusOr<std::string> done = action(**remote, *found);
  if (!done.ok()) {
    *exit_code = ReportStatus(done.status(), io);
    return;
  }
  io.out << "sweep " << found->id() << " '" << found->name() << "': " << *done << "\n";
  *exit_code = kExitOk;
}

void AppendQueryResponse(const v1::QueryResponse& response, bool render_blobs, Table* table) {
  if (table->columns.empty()) {
    table->columns.assign(response.columns().begin(), response.columns().end());
  }
  for (const v1::QueryRow& row : response.rows()) {
    auto& cells = table->rows.emplace_back();
    for (const v1::QueryValue& v : row.values()) {
      switch (v.value_case()) {
        case v1::QueryValue::kIntValue:
          cells.emplace_back(v.int_value());
          break;
        case v1::QueryValue::kDoubleValue:
          cells.emplace_back(v.double_value());
          break;
        case v1::QueryValue::kTextValue:
          cells.emplace_back(v.text_value());
          break;
        case v1::QueryValue::kBlobValue:
          cells.emplace_back(render_blobs ? absl::StrCat("<blob ", v.blob_value().size(), " bytes>")
                                          : v.blob_value());
          break;
        default:
          cells.emplace_back(std::monostate());
      }
    }
  }
}

absl::StatusOr<Table> RunQuery(Remote& remote, const std::string& sql, int64_t max_rows,
                               int64_t timeout_ms, bool* truncated) {
  v1::QueryRequest request;
  request.set_sql(sql);
  request.set_max_rows(max_rows);
  request.set_timeout_ms(timeout_ms);
  grpc::ClientContext context;
  remote.Prepare(&context, absl::Seconds(300));
  auto reader = remote.stub().Query(&context, request);
  Table table;
  v1::QueryResponse response;
  *truncated = false;
  while (reader->Read(&response)) {
    AppendQueryResponse(response, /*render_blobs=*/true, &table);
    *truncated |= response.truncated();
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return remote.Error(status, "Query");
  return table;
}

}  // namespace sf::cli
