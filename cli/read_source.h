// Where the read commands (results, query, export, list, status, job, analyze) read
// from: a coordinator over gRPC, or a coordinator database file opened read-only with
// no coordinator running (`--db FILE`, e.g. the sfctl-run.db that `sfctl run` writes).
// Both answer alike, so a command is written once against ReadSource.
#ifndef SF_CLI_READ_SOURCE_H_
#define SF_CLI_READ_SOURCE_H_

#include <functional>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "cli/remote.h"
#include "coordinator/results_reader.h"
#include "sf/v1/coordinator.pb.h"

namespace sf::cli {

using coordinator::ResultsSource;

// Receives one streamed message of a query; returns false to stop early.
using QuerySink = std::function<bool(v1::QueryResponse&)>;

class ReadSource : public ResultsSource {
 public:
  // Runs one read-only SELECT (the Query RPC's contract: PermissionDenied for anything
  // but reading, InvalidArgument for bad SQL, DeadlineExceeded past the time limit).
  virtual absl::Status Query(const v1::QueryRequest& request, const QuerySink& sink) = 0;
  // "coordinator at host:port" or "database FILE", for messages.
  virtual std::string Describe() const = 0;
};

// --db and the coordinator flags of a read command.
struct ReadFlags {
  std::string db;  // "" = read from the coordinator
  RemoteFlags remote;
};

// Adds --db FILE and the coordinator flags (AddRemoteFlags) to `cmd`; --db excludes
// --coordinator.
void AddReadFlags(CLI::App* cmd, ReadFlags* flags);

// The database file of `flags.db` when it is set, else the coordinator of the remote
// flags. NotFound (naming the file) for a missing database; the errors of
// Remote::Connect for bad token or TLS files.
absl::StatusOr<std::unique_ptr<ReadSource>> OpenReadSource(const ReadFlags& flags);

// The coordinator database file `db_path`, read-only (a running coordinator may be
// writing it). NotFound when it is not a file, saying to pass --db or --coordinator;
// FailedPrecondition when it is not a coordinator database.
absl::StatusOr<std::unique_ptr<ReadSource>> DatabaseSource(const std::string& db_path);

// The coordinator behind `remote`, which must outlive the source. An unreachable
// coordinator's Unavailable message also says how to read a database file instead.
std::unique_ptr<ReadSource> CoordinatorSource(Remote* remote);

// The sweep with id `id_or_name` (when it is all digits) or else that name. NotFound
// names it and lists the existing sweeps.
absl::StatusOr<v1::Sweep> FindSweep(ResultsSource& source, const std::string& id_or_name);

// "finished", "cancelled" or "running".
const char* SweepStateName(v1::SweepState state);
// "queued", "leased" (a worker runs it), "done", "failed", "cancelled": the names the
// query views use (job_states).
const char* JobStateName(v1::JobState state);

}  // namespace sf::cli

#endif  // SF_CLI_READ_SOURCE_H_
