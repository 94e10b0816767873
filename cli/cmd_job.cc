// sfctl job KEY: one job described (its axes, sweeps, state by name, every attempt with
// its worker, times and error, and its result), from a coordinator or a results file.
#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "cli/sweep_ops.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "sf/v1/job.pb.h"

namespace sf::cli {
namespace {

struct Attempt {
  std::string worker;
  int64_t started_ms = 0;
  int64_t ended_ms = 0;  // 0 = still running
  std::string outcome;   // "done", "retried", "failed", "preempted", "running"
  std::string message;   // the error, for attempts that did not finish the job
};

struct JobDescription {
  int64_t id = 0;
  v1::JobSpec spec;
  std::string state;
  int64_t attempts_failed = 0;
  int64_t max_attempts = 0;
  int64_t preemptions = 0;
  int64_t samples_done = 0;
  int64_t samples_total = 0;
  std::string last_error;
  std::vector<std::string> sweeps;  // "1 'quickstart'"
  std::vector<Attempt> attempts;
  Table result;  // one row when the job is done
};

// The rows of `sql`, blobs as their bytes.
absl::StatusOr<Table> Rows(ReadSource& source, const std::string& sql) {
  v1::QueryRequest request;
  request.set_sql(sql);
  Table table;
  SF_RETURN_IF_ERROR(source.Query(request, [&table](v1::QueryResponse& response) {
    AppendQueryResponse(response, /*render_blobs=*/false, &table);
    return true;
  }));
  return table;
}

int64_t IntCell(const Cell& c) {
  const int64_t* i = std::get_if<int64_t>(&c);
  return i ? *i : 0;
}
std::string TextCell(const Cell& c) {
  const std::string* s = std::get_if<std::string>(&c);
  return s ? *s : "";
}

const char* JobStateText(int64_t state) { return JobStateName(static_cast<v1::JobState>(state)); }

// The job whose key starts with `prefix`; NotFound or InvalidArgument (ambiguous, not hex).
absl::Status LoadJobRow(ReadSource& source, const std::string& prefix, JobDescription* job) {
  if (prefix.size() < 4 || !std::all_of(prefix.begin(), prefix.end(), [](char c) {
        return absl::ascii_isxdigit(c) && !absl::ascii_isupper(c);
      })) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", prefix,
                     "' is not a job key: give at least 4 lowercase hex digits of one (the key "
                     "column of sfctl results, status or query)"));
  }
  SF_ASSIGN_OR_RETURN(
      Table t, Rows(source, absl::StrCat("SELECT id, key, state, attempts, max_attempts, "
                                         "preemptions, samples_done, samples_total, last_error, "
                                         "spec FROM jobs WHERE key >= '",
                                         prefix, "' AND key < '", prefix, "g' LIMIT 6")));
  if (t.rows.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no job with a key starting '", prefix, "' in ", source.Describe()));
  }
  if (t.rows.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(t.rows.size() > 5 ? "more than 5" : absl::StrCat(t.rows.size()),
                     " jobs have keys starting '", prefix, "'; give more of the key"));
  }
  const std::vector<Cell>& r = t.rows[0];
  job->id = IntCell(r[0]);
  job->state = JobStateText(IntCell(r[2]));
  job->attempts_failed = IntCell(r[3]);
  job->max_attempts = IntCell(r[4]);
  job->preemptions = IntCell(r[5]);
  job->samples_done = IntCell(r[6]);
  job->samples_total = IntCell(r[7]);
  job->last_error = TextCell(r[8]);
  if (!job->spec.ParseFromString(TextCell(r[9]))) {
    return absl::DataLossError(
        absl::StrCat("job ", TextCell(r[1]), ": its stored spec is corrupt"));
  }
  return absl::OkStatus();
}

// Each attempt from the job's events (leased, then done, retried, failed or preempted).
absl::Status LoadAttempts(ReadSource& source, JobDescription* job) {
  SF_ASSIGN_OR_RETURN(
      Table t,
      Rows(source,
           absl::StrCat("SELECT kind, worker_id, message, unix_ms FROM events WHERE sweep_id = "
                        "(SELECT MIN(sweep_id) FROM sweep_jobs WHERE job_id = ",
                        job->id, ") AND job_key = '", job->spec.key(),
                        "' AND kind IN (2, 4, 5, 6, 7) ORDER BY seq")));
  for (const std::vector<Cell>& r : t.rows) {
    const int64_t kind = IntCell(r[0]);
    if (kind == v1::EVENT_KIND_JOB_LEASED) {
      job->attempts.push_back({TextCell(r[1]), IntCell(r[3]), 0, "running", ""});
      continue;
    }
    if (job->attempts.empty() || job->attempts.back().ended_ms != 0) {
      job->attempts.push_back({TextCell(r[1]), 0, 0, "", ""});  // its lease predates the log
    }
    Attempt& a = job->attempts.back();
    a.ended_ms = IntCell(r[3]);
    a.message = TextCell(r[2]);
    a.outcome = kind == v1::EVENT_KIND_JOB_DONE        ? "done"
                : kind == v1::EVENT_KIND_JOB_RETRY     ? "retried"
                : kind == v1::EVENT_KIND_JOB_PREEMPTED ? "preempted"
                                                       : "failed";
  }
  return absl::OkStatus();
}

absl::StatusOr<JobDescription> DescribeJob(ReadSource& source, const std::string& prefix) {
  JobDescription job;
  SF_RETURN_IF_ERROR(LoadJobRow(source, prefix, &job));
  SF_ASSIGN_OR_RETURN(Table sweeps,
                      Rows(source, absl::StrCat("SELECT s.id, s.name FROM sweep_jobs j JOIN "
                                                "sweeps s ON s.id = j.sweep_id WHERE j.job_id = ",
                                                job.id, " ORDER BY s.id")));
  for (const auto& r : sweeps.rows) {
    job.sweeps.push_back(absl::StrCat(IntCell(r[0]), " '", TextCell(r[1]), "'"));
  }
  SF_RETURN_IF_ERROR(LoadAttempts(source, &job));
  SF_ASSIGN_OR_RETURN(
      job.result,
      Rows(source, absl::StrCat("SELECT metric, mean, variance, n, measured_compression, "
                                "wall_seconds, worker_id, gpu_name FROM results WHERE job_id = ",
                                job.id)));
  // The standard error of the mean, as `sfctl results` shows it.
  if (!job.result.rows.empty()) {
    std::vector<Cell>& r = job.result.rows[0];
    const double* variance = std::get_if<double>(&r[2]);
    const int64_t n = IntCell(r[3]);
    r[2] = n > 1 && variance != nullptr ? std::sqrt(*variance / static_cast<double>(n)) : 0.0;
    job.result.columns[2] = "stderr";
  }
  return job;
}

std::string Time(int64_t unix_ms) {
  if (unix_ms == 0) return "?";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

std::string MethodText(const v1::MethodChoice& m) {
  return m.has_compression() ? absl::StrFormat("%s (compression %g)", m.name(), m.compression())
                             : m.name();
}

void PrintText(const JobDescription& job, std::ostream& out) {
  const v1::JobSpec& s = job.spec;
  out << "job " << s.key() << "\n"
      << "  model     " << s.model().name() << " (" << s.model().path() << ")\n"
      << "  length    " << s.sequence_length() << "\n"
      << "  prefill   " << MethodText(s.prefill()) << "\n"
      << "  decode    " << MethodText(s.decode()) << "\n"
      << "  task      " << s.task().name() << " (" << s.task().samples() << " samples), seed "
      << s.seed() << "\n"
      << "  sweeps    " << absl::StrJoin(job.sweeps, ", ") << "\n"
      << "  state     " << job.state << "; " << job.attempts_failed << " of " << job.max_attempts
      << " attempts failed, " << job.preemptions << " preempted; samples " << job.samples_done
      << "/" << job.samples_total << "\n";
  if (!job.last_error.empty()) out << "  last error " << job.last_error << "\n";
  out << "  attempts  " << (job.attempts.empty() ? "none yet" : "") << "\n";
  for (size_t i = 0; i < job.attempts.size(); ++i) {
    const Attempt& a = job.attempts[i];
    out << absl::StrFormat("    %d  %-12s %s UTC", i + 1, a.worker, Time(a.started_ms));
    if (a.ended_ms > 0 && a.started_ms > 0) {
      out << absl::StrFormat(" + %.1fs", (a.ended_ms - a.started_ms) / 1000.0);
    }
    out << "  " << a.outcome << "\n";
    if (!a.message.empty()) out << "       " << a.message << "\n";
  }
  if (!job.result.rows.empty()) {
    const std::vector<Cell>& r = job.result.rows[0];
    out << "  result    " << TextCell(r[0]) << ": mean "
        << absl::StrFormat("%.4g +- %.2g (n %d), measured compression %.3g, %.1f s on %s",
                           std::get<double>(r[1]), std::get<double>(r[2]), IntCell(r[3]),
                           std::get<double>(r[4]), std::get<double>(r[5]), TextCell(r[6]))
        << "\n";
  }
}

void PrintJson(const JobDescription& job, std::ostream& out) {
  const v1::JobSpec& s = job.spec;
  nlohmann::ordered_json attempts = nlohmann::ordered_json::array();
  for (const Attempt& a : job.attempts) {
    attempts.push_back({{"worker", a.worker},
                        {"started_unix_ms", a.started_ms},
                        {"ended_unix_ms", a.ended_ms},
                        {"outcome", a.outcome},
                        {"error", a.message}});
  }
  nlohmann::ordered_json o = {
      {"key", s.key()},
      {"model", s.model().name()},
      {"model_path", s.model().path()},
      {"length", s.sequence_length()},
      {"prefill", s.prefill().name()},
      {"prefill_compression",
       s.prefill().has_compression() ? nlohmann::ordered_json(s.prefill().compression()) : nullptr},
      {"decode", s.decode().name()},
      {"decode_compression",
       s.decode().has_compression() ? nlohmann::ordered_json(s.decode().compression()) : nullptr},
      {"task", s.task().name()},
      {"seed", s.seed()},
      {"sweeps", job.sweeps},
      {"state", job.state},
      {"failed_attempts", job.attempts_failed},
      {"max_attempts", job.max_attempts},
      {"preemptions", job.preemptions},
      {"samples_done", job.samples_done},
      {"samples_total", job.samples_total},
      {"last_error", job.last_error},
      {"attempts", attempts}};
  if (!job.result.rows.empty()) {
    nlohmann::ordered_json result;
    for (size_t c = 0; c < job.result.columns.size(); ++c) {
      std::visit(
          [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::monostate>) {
              result[job.result.columns[c]] = nullptr;
            } else {
              result[job.result.columns[c]] = v;
            }
          },
          job.result.rows[0][c]);
    }
    o["result"] = std::move(result);
  }
  out << o.dump(2) << "\n";
}

}  // namespace

void AddJobCommand(CLI::App& app, Io& io, int* exit_code) {
  struct Flags {
    std::string key;
    std::string format = "text";
    ReadFlags read;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "job",
      "Describe one job: its grid axes, sweeps, state, every attempt (worker, start, "
      "duration, outcome and error) and its result; from a coordinator or a results file "
      "(--db). Example: sfctl job 3f2a9c1b --db sfctl-run.db");
  cmd->alias("describe");
  cmd->add_option("key", flags->key, "the job's key or its first (at least 4) hex digits")
      ->required();
  AddFormatFlag(cmd, &flags->format, {"text", "json"});
  AddReadFlags(cmd, &flags->read);
  cmd->callback([&io, exit_code, flags] {
    absl::StatusOr<std::unique_ptr<ReadSource>> source = OpenReadSource(flags->read);
    if (!source.ok()) {
      *exit_code = ReportStatus(source.status(), io);
      return;
    }
    absl::StatusOr<JobDescription> job = DescribeJob(**source, flags->key);
    if (!job.ok()) {
      *exit_code = ReportStatus(job.status(), io);
      return;
    }
    if (flags->format == "json") {
      PrintJson(*job, io.out);
    } else {
      PrintText(*job, io.out);
    }
    *exit_code = kExitOk;
  });
}

}  // namespace sf::cli
