#include "cli/sweep_ops.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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
  std::stringstream file_text;
  file_text << in.rdbuf();
  SF_ASSIGN_OR_RETURN(std::string text, ApplySpecOverrides(file_text.str(), flags.overrides));
  // Relative paths resolve against the current folder, as in `sfctl validate`
  // (docs/spec.md), so validating and running a spec mean the same models.
  SpecOptions options;
  const std::string source =
      flags.overrides.empty() ? flags.spec_path : absl::StrCat(flags.spec_path, " (with --set)");
  SF_ASSIGN_OR_RETURN(SweepSpec spec, ParseSweepSpec(text, source, options));
  SF_ASSIGN_OR_RETURN(std::vector<JobSpec> jobs, ExpandSweep(spec));
  v1::SubmitSweepRequest request;
  request.set_sweep_name(!flags.name.empty() ? flags.name
                         : !spec.name.empty()
                             ? spec.name
                             : std::filesystem::path(flags.spec_path).stem().string());
  request.set_force(flags.force);
  request.set_priority(flags.priority);
  request.set_max_attempts(flags.max_attempts);
  request.set_spec_yaml(text);
  for (const JobSpec& job : jobs) *request.add_jobs() = JobSpecToProto(job);
  return request;
}

void AddSpecOverrideFlag(CLI::App* cmd, std::vector<std::string>* overrides) {
  cmd->add_option("--set", *overrides,
                  "override a spec key without editing the file, e.g. --set "
                  "sequence_lengths=[4096] --set tasks=[ruler_niah] --set "
                  "generation.max_new_tokens=32 (repeatable; the value is YAML; the sweep "
                  "records the spec with the overrides)")
      ->allow_extra_args(false);
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
  // The state of a sweep that was over before watching began (replay_finished).
  v1::SweepState final_state = v1::SWEEP_STATE_UNSPECIFIED;
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
        if (sweep.state() != v1::SWEEP_STATE_RUNNING) {
          if (!options.replay_finished) return sweep;
          // Replayed from its first event: the events set its state as they come.
          final_state = sweep.state();
          sweep.set_state(v1::SWEEP_STATE_RUNNING);
        }
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
        if (options.on_event) options.on_event(event);
        // Only the last event of a batch carries the counts; the others leave them be.
        if (event.has_counts()) *sweep.mutable_counts() = event.counts();
        if (event.kind() == v1::EVENT_KIND_SWEEP_FINISHED ||
            event.kind() == v1::EVENT_KIND_SWEEP_CANCELLED) {
          if (final_state != v1::SWEEP_STATE_UNSPECIFIED) {
            // A replay goes on to the stream's end: a retried sweep finishes more than once.
            sweep.set_state(event.kind() == v1::EVENT_KIND_SWEEP_FINISHED
                                ? v1::SWEEP_STATE_FINISHED
                                : v1::SWEEP_STATE_CANCELLED);
          } else {
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
          }
        } else if (event.kind() == v1::EVENT_KIND_JOBS_REQUEUED) {
          sweep.set_state(v1::SWEEP_STATE_RUNNING);
        }
        display.Update(sweep);
      }
      grpc::Status status = reader->Finish();
      // A replayed sweep that was already over: the stream ends once it is over again.
      if (status.ok() && final_state != v1::SWEEP_STATE_UNSPECIFIED) {
        if (sweep.state() == v1::SWEEP_STATE_RUNNING) sweep.set_state(final_state);
        return sweep;
      }
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
    if (options.on_reconnecting) options.on_reconnecting(now - down_since);
    clock->SleepFor(backoff);
    backoff = std::min(backoff * 2, options.backoff_max);
  }
}

void ShowWatchNotes(ProgressDisplay* display, WatchOptions* options) {
  options->on_event = [display](const v1::SweepEvent& event) {
    const std::string key = event.job_key().substr(0, 12);
    switch (event.kind()) {
      case v1::EVENT_KIND_JOB_FAILED:
        display->Note(absl::StrCat("job ", key, " failed on ", event.worker_id(), ": ",
                                   event.message(), " (sfctl job ", key, ")"));
        break;
      case v1::EVENT_KIND_JOB_RETRY:
        display->Note(absl::StrCat("job ", key, " will be retried; ", event.worker_id(), ": ",
                                   event.message()));
        break;
      default:
        break;
    }
  };
  options->on_reconnecting = [display](absl::Duration down_for) {
    const std::string since =
        down_for >= absl::Seconds(1)
            ? absl::StrCat(" for ", absl::FormatDuration(absl::Trunc(down_for, absl::Seconds(1))))
            : std::string();
    display->SetNotice(absl::StrCat("coordinator unreachable", since,
                                    "; reconnecting (the counts above may be stale)"));
  };
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

// The Results request of `f` (the sweep named by id or name is looked up first).
absl::StatusOr<v1::ResultsRequest> ResultsRequestFor(ReadSource& source, const ResultFilters& f) {
  v1::ResultsRequest request;
  if (!f.sweep.empty()) {
    SF_ASSIGN_OR_RETURN(v1::Sweep sweep, FindSweep(source, f.sweep));
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

double StandardError(const v1::JobResult& r) {
  return r.n() > 1 ? std::sqrt(r.variance() / static_cast<double>(r.n())) : 0.0;
}

// The sparse side of a job: its method, phase and compression ("dense", "-", 1 for a
// dense job; both names joined by '+' when both phases are sparse).
struct SparseSide {
  std::string method;
  std::string phase;
  Cell compression;
};

SparseSide SparseSideOf(const v1::JobSpec& j) {
  const std::string dense = "dense";
  const bool sparse_prefill = j.prefill().name() != dense;
  const bool sparse_decode = j.decode().name() != dense;
  if (sparse_prefill && sparse_decode) {
    return {absl::StrCat(j.prefill().name(), "+", j.decode().name()), "both",
            OptionalDouble(j.prefill().has_compression(), j.prefill().compression())};
  }
  if (sparse_prefill) {
    return {j.prefill().name(), "prefill",
            OptionalDouble(j.prefill().has_compression(), j.prefill().compression())};
  }
  if (sparse_decode) {
    return {j.decode().name(), "decode",
            OptionalDouble(j.decode().has_compression(), j.decode().compression())};
  }
  return {dense, "-", Cell(1.0)};
}

}  // namespace

absl::StatusOr<std::vector<v1::ResultRow>> FetchResultRows(ReadSource& source,
                                                           const ResultFilters& f) {
  SF_ASSIGN_OR_RETURN(v1::ResultsRequest request, ResultsRequestFor(source, f));
  std::vector<v1::ResultRow> rows;
  SF_RETURN_IF_ERROR(source.Results(request, [&rows](v1::ResultsResponse& page) {
    for (v1::ResultRow& row : *page.mutable_rows()) rows.push_back(std::move(row));
    return true;
  }));
  return rows;
}

Table WideResultsTable(const std::vector<v1::ResultRow>& rows) {
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
  for (const v1::ResultRow& row : rows) {
    const v1::JobSpec& j = row.job();
    const v1::JobResult& r = row.result();
    table.rows.push_back(
        {j.key().substr(0, 12), j.model().name(), j.sequence_length(), j.prefill().name(),
         OptionalDouble(j.prefill().has_compression(), j.prefill().compression()),
         j.decode().name(), OptionalDouble(j.decode().has_compression(), j.decode().compression()),
         j.task().name(), static_cast<int64_t>(j.seed()), r.metric(), r.n(), r.mean(),
         StandardError(r), r.measured_compression(), r.wall_seconds(), r.worker_id()});
  }
  return table;
}

Table CompactResultsTable(const std::vector<v1::ResultRow>& rows, std::string* legend) {
  Table table;
  table.columns = {"key",  "model", "length", "method", "phase",    "compression", "task",
                   "seed", "n",     "mean",   "stderr", "measured", "wall_s"};
  std::map<std::string, std::string> metric_of_task;
  for (const v1::ResultRow& row : rows) {
    const v1::JobSpec& j = row.job();
    const v1::JobResult& r = row.result();
    SparseSide side = SparseSideOf(j);
    table.rows.push_back({j.key().substr(0, 8), j.model().name(), j.sequence_length(),
                          std::move(side.method), std::move(side.phase),
                          std::move(side.compression), j.task().name(),
                          static_cast<int64_t>(j.seed()), r.n(), r.mean(), StandardError(r),
                          r.measured_compression(), r.wall_seconds()});
    metric_of_task.emplace(j.task().name(), r.metric());
  }
  legend->clear();
  for (const auto& [task, metric] : metric_of_task) {
    absl::StrAppend(legend, "metric: ", task, " = ", metric, "\n");
  }
  return table;
}

void PrintResults(const std::vector<v1::ResultRow>& rows, Format format, bool wide,
                  std::ostream& out) {
  if (format != Format::kTable || wide) {
    PrintTable(WideResultsTable(rows), format, out);
  } else {
    std::string legend;
    PrintTable(CompactResultsTable(rows, &legend), format, out);
    if (!rows.empty()) {
      out << "(mean = the metric below over n samples; stderr = its standard error; measured = "
             "measured compression; --wide shows every column)\n"
          << legend;
    }
  }
  if (format == Format::kTable && rows.empty()) out << "(no matching results)\n";
}

absl::StatusOr<Table> FetchResults(ReadSource& source, const ResultFilters& f) {
  SF_ASSIGN_OR_RETURN(std::vector<v1::ResultRow> rows, FetchResultRows(source, f));
  return WideResultsTable(rows);
}

absl::StatusOr<Table> FetchSamples(ReadSource& source, const ResultFilters& f) {
  SF_ASSIGN_OR_RETURN(v1::ResultsRequest request, ResultsRequestFor(source, f));
  request.set_include_unfinished(true);  // samples stored by jobs still running or failed
  request.set_include_samples(true);
  request.set_include_sample_text(true);
  request.set_limit(0);  // --limit counts samples here, not jobs
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
  const int64_t limit = f.limit;
  SF_RETURN_IF_ERROR(source.Results(request, [&table, limit](v1::ResultsResponse& page) {
    for (const v1::ResultRow& row : page.rows()) {
      const v1::JobSpec& j = row.job();
      for (const v1::SampleResult& s : row.samples()) {
        if (limit > 0 && static_cast<int64_t>(table.rows.size()) >= limit) return false;
        table.rows.push_back(
            {j.key(), j.model().name(), j.sequence_length(), j.prefill().name(),
             OptionalDouble(j.prefill().has_compression(), j.prefill().compression()),
             j.decode().name(),
             OptionalDouble(j.decode().has_compression(), j.decode().compression()),
             j.task().name(), static_cast<int64_t>(j.seed()), static_cast<int64_t>(s.index()),
             s.score(), s.prediction(), s.target(), s.input_tokens(), s.output_tokens(),
             s.measured_density(), s.wall_seconds()});
      }
    }
    return limit <= 0 || static_cast<int64_t>(table.rows.size()) < limit;
  }));
  return table;
}

std::string DescribeJobAxes(const v1::JobSpec& j) {
  SparseSide side = SparseSideOf(j);
  std::string method = side.method;
  if (const double* c = std::get_if<double>(&side.compression); c && side.phase != "-") {
    absl::StrAppend(&method, "@", absl::StrFormat("%g", *c));
  }
  if (side.phase != "-") absl::StrAppend(&method, " (", side.phase, ")");
  return absl::StrCat(j.model().name(), " L=", j.sequence_length(), " ", method, " ",
                      j.task().name(), " seed ", j.seed());
}

absl::StatusOr<std::vector<FailedJob>> FetchFailedJobs(ReadSource& source, int64_t sweep_id,
                                                       int64_t limit) {
  v1::ResultsRequest request;
  request.set_sweep_id(sweep_id);
  request.set_include_unfinished(true);
  request.add_states(v1::JOB_STATE_FAILED);
  request.set_limit(limit);
  request.set_newest_first(true);
  std::vector<FailedJob> failed;
  SF_RETURN_IF_ERROR(source.Results(request, [&failed](v1::ResultsResponse& page) {
    for (const v1::ResultRow& row : page.rows()) {
      failed.push_back({row.job().key(), DescribeJobAxes(row.job()), row.last_error()});
    }
    return true;
  }));
  return failed;
}

void PrintFailedJobs(const std::vector<FailedJob>& failed, int64_t failed_total,
                     std::ostream& out) {
  if (failed.empty()) return;
  out << (failed_total > static_cast<int64_t>(failed.size())
              ? absl::StrCat("latest ", failed.size(), " of ", failed_total, " failed jobs")
              : std::string("failed jobs"))
      << " (sfctl job KEY shows every attempt):\n";
  for (const FailedJob& f : failed) {
    out << "  " << f.key.substr(0, 12) << "  " << f.axes << "\n      " << f.error << "\n";
  }
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

absl::StatusOr<Table> RunQuery(ReadSource& source, const std::string& sql, int64_t max_rows,
                               int64_t timeout_ms, bool* truncated) {
  v1::QueryRequest request;
  request.set_sql(sql);
  request.set_max_rows(max_rows);
  request.set_timeout_ms(timeout_ms);
  Table table;
  *truncated = false;
  SF_RETURN_IF_ERROR(source.Query(request, [&table, truncated](v1::QueryResponse& response) {
    AppendQueryResponse(response, /*render_blobs=*/true, &table);
    *truncated |= response.truncated();
    return true;
  }));
  return table;
}

}  // namespace sf::cli
