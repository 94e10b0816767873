#include "cli/read_source.h"

#include <algorithm>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "coordinator/query.h"
#include "sf/v1/coordinator.grpc.pb.h"

namespace sf::cli {
namespace {

// The Coordinator service's read calls.
class CoordinatorReader : public ReadSource {
 public:
  CoordinatorReader(Remote* remote, std::unique_ptr<Remote> owned)
      : owned_(std::move(owned)), remote_(remote) {}

  absl::StatusOr<v1::Sweep> GetSweep(const v1::GetSweepRequest& request) override {
    grpc::ClientContext context;
    remote_->Prepare(&context);
    v1::Sweep sweep;
    grpc::Status status = remote_->stub().GetSweep(&context, request, &sweep);
    if (!status.ok()) return Error(status, "GetSweep");
    return sweep;
  }

  absl::StatusOr<v1::ListSweepsResponse> ListSweeps(const v1::ListSweepsRequest& request) override {
    grpc::ClientContext context;
    remote_->Prepare(&context);
    v1::ListSweepsResponse response;
    grpc::Status status = remote_->stub().ListSweeps(&context, request, &response);
    if (!status.ok()) return Error(status, "ListSweeps");
    return response;
  }

  absl::Status Results(const v1::ResultsRequest& request,
                       const coordinator::ResultsSink& sink) override {
    grpc::ClientContext context;
    remote_->Prepare(&context, absl::Seconds(600));
    auto reader = remote_->stub().Results(&context, request);
    v1::ResultsResponse page;
    bool stopped = false;
    while (!stopped && reader->Read(&page)) {
      if (!sink(page)) {
        context.TryCancel();
        stopped = true;
      }
    }
    grpc::Status status = reader->Finish();
    if (!status.ok() && !(stopped && status.error_code() == grpc::StatusCode::CANCELLED)) {
      return Error(status, "Results");
    }
    return absl::OkStatus();
  }

  absl::Status Query(const v1::QueryRequest& request, const QuerySink& sink) override {
    grpc::ClientContext context;
    remote_->Prepare(&context, absl::Seconds(300));
    auto reader = remote_->stub().Query(&context, request);
    v1::QueryResponse response;
    bool stopped = false;
    while (!stopped && reader->Read(&response)) {
      if (!sink(response)) {
        context.TryCancel();
        stopped = true;
      }
    }
    grpc::Status status = reader->Finish();
    if (!status.ok() && !(stopped && status.error_code() == grpc::StatusCode::CANCELLED)) {
      return Error(status, "Query");
    }
    return absl::OkStatus();
  }

  std::string Describe() const override {
    return absl::StrCat("coordinator at ", remote_->address());
  }

 private:
  absl::Status Error(const grpc::Status& status, absl::string_view call) const {
    absl::Status s = remote_->Error(status, call);
    if (absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)) {
      return absl::Status(s.code(), absl::StrCat(s.message(),
                                                 "; or read a results file without a "
                                                 "coordinator: --db FILE (sfctl run writes ",
                                                 "sfctl-run.db)"));
    }
    return s;
  }

  std::unique_ptr<Remote> owned_;
  Remote* const remote_;
};

// A database file: the results reader and the read-only query of coordinator/.
class DatabaseReader : public ReadSource {
 public:
  DatabaseReader(std::string path, std::unique_ptr<coordinator::DatabaseResults> db)
      : path_(std::move(path)), db_(std::move(db)) {}

  absl::StatusOr<v1::Sweep> GetSweep(const v1::GetSweepRequest& request) override {
    return db_->GetSweep(request);
  }
  absl::StatusOr<v1::ListSweepsResponse> ListSweeps(const v1::ListSweepsRequest& request) override {
    return db_->ListSweeps(request);
  }
  absl::Status Results(const v1::ResultsRequest& request,
                       const coordinator::ResultsSink& sink) override {
    return db_->Results(request, sink);
  }
  absl::Status Query(const v1::QueryRequest& request, const QuerySink& sink) override {
    coordinator::QueryLimits limits;
    if (request.max_rows() > 0) limits.max_rows = request.max_rows();
    if (request.timeout_ms() > 0) limits.timeout = absl::Milliseconds(request.timeout_ms());
    return coordinator::RunReadOnlyQuery(path_, request.sql(), limits, sink);
  }
  std::string Describe() const override { return absl::StrCat("database ", path_); }

 private:
  const std::string path_;
  std::unique_ptr<coordinator::DatabaseResults> db_;
};

// "existing sweeps: 2 'b' (3 of 4 jobs done), ..." for a NotFound message.
absl::StatusOr<std::string> DescribeSweeps(ResultsSource& source) {
  v1::ListSweepsRequest request;
  request.set_limit(20);
  request.set_include_finished(true);
  SF_ASSIGN_OR_RETURN(v1::ListSweepsResponse list, source.ListSweeps(request));
  if (list.sweeps().empty()) return std::string("there are no sweeps");
  std::vector<std::string> names;
  for (const v1::Sweep& s : list.sweeps()) {
    names.push_back(absl::StrCat(s.id(), " '", s.name(), "' (", s.counts().done(), " of ",
                                 s.counts().total(), " jobs done)"));
  }
  return absl::StrCat("existing sweeps: ", absl::StrJoin(names, ", "));
}

}  // namespace

void AddReadFlags(CLI::App* cmd, ReadFlags* flags) {
  CLI::Option* db = cmd->add_option(
      "--db", flags->db,
      "read this coordinator database file (read-only; no coordinator needed), e.g. the "
      "sfctl-run.db of `sfctl run`");
  AddRemoteFlags(cmd, &flags->remote);
  cmd->get_option("--coordinator")->excludes(db);
}

absl::StatusOr<std::unique_ptr<ReadSource>> OpenReadSource(const ReadFlags& flags) {
  if (!flags.db.empty()) return DatabaseSource(flags.db);
  SF_ASSIGN_OR_RETURN(std::unique_ptr<Remote> remote, Remote::Connect(flags.remote));
  Remote* raw = remote.get();
  return std::unique_ptr<ReadSource>(std::make_unique<CoordinatorReader>(raw, std::move(remote)));
}

absl::StatusOr<std::unique_ptr<ReadSource>> DatabaseSource(const std::string& db_path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(db_path, ec)) {
    return absl::NotFoundError(absl::StrCat(
        "no results database '", db_path,
        "': pass --db FILE (the file `sfctl run` or sf-coordinator --db wrote) or --coordinator"));
  }
  SF_ASSIGN_OR_RETURN(std::unique_ptr<coordinator::DatabaseResults> db,
                      coordinator::DatabaseResults::Open(db_path));
  return std::unique_ptr<ReadSource>(std::make_unique<DatabaseReader>(db_path, std::move(db)));
}

std::unique_ptr<ReadSource> CoordinatorSource(Remote* remote) {
  return std::make_unique<CoordinatorReader>(remote, nullptr);
}

absl::StatusOr<v1::Sweep> FindSweep(ResultsSource& source, const std::string& id_or_name) {
  const bool numeric = !id_or_name.empty() && id_or_name.size() < 19 &&
                       std::all_of(id_or_name.begin(), id_or_name.end(),
                                   [](char c) { return absl::ascii_isdigit(c); });
  if (numeric) {
    v1::GetSweepRequest by_id;
    by_id.set_id(std::stoll(id_or_name));
    absl::StatusOr<v1::Sweep> sweep = source.GetSweep(by_id);
    if (!absl::IsNotFound(sweep.status())) return sweep;
  }
  v1::GetSweepRequest by_name;
  by_name.set_name(id_or_name);
  absl::StatusOr<v1::Sweep> sweep = source.GetSweep(by_name);
  if (!absl::IsNotFound(sweep.status())) return sweep;
  SF_ASSIGN_OR_RETURN(std::string existing, DescribeSweeps(source));
  return absl::NotFoundError(absl::StrCat("no sweep '", id_or_name, "'; ", existing));
}

const char* SweepStateName(v1::SweepState state) {
  switch (state) {
    case v1::SWEEP_STATE_FINISHED:
      return "finished";
    case v1::SWEEP_STATE_CANCELLED:
      return "cancelled";
    default:
      return "running";
  }
}

const char* JobStateName(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_QUEUED:
      return "queued";
    case v1::JOB_STATE_LEASED:
      return "leased";
    case v1::JOB_STATE_DONE:
      return "done";
    case v1::JOB_STATE_FAILED:
      return "failed";
    case v1::JOB_STATE_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

}  // namespace sf::cli
