// Reading sweeps and results from a coordinator database without writing to it: the
// Results RPC (per-sample scores included) is answered by ReadResults, and a database
// file is read the same way through DatabaseResults, so no code outside coordinator/
// needs to know the tables.
#ifndef SF_COORDINATOR_RESULTS_READER_H_
#define SF_COORDINATOR_RESULTS_READER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/sqlite.h"
#include "sf/v1/coordinator.pb.h"

namespace sf::coordinator {

// Receives one page of rows; returns false to stop the stream early.
using ResultsSink = std::function<bool(v1::ResultsResponse&)>;

// Streams the rows matching `request` (ResultsRequest in coordinator.proto: filters,
// include_unfinished, include_samples, states, limit, page_size) from `db`, in job
// order, to `sink`. `schema_version` is the database's: columns of later migrations
// read as "not recorded". InvalidArgument for more than 900 filter values.
absl::Status ReadResults(Database* db, int schema_version, const v1::ResultsRequest& request,
                         const ResultsSink& sink);

// The read side of the Coordinator service that the analysis uses. A coordinator
// database file (DatabaseResults) and a coordinator over gRPC (sfctl's
// CoordinatorResults) answer alike. Errors are those of the service.
class ResultsSource {
 public:
  virtual ~ResultsSource() = default;
  // NotFound for an unknown sweep; InvalidArgument when neither id nor name is given.
  virtual absl::StatusOr<v1::Sweep> GetSweep(const v1::GetSweepRequest& request) = 0;
  // Newest first.
  virtual absl::StatusOr<v1::ListSweepsResponse> ListSweeps(
      const v1::ListSweepsRequest& request) = 0;
  virtual absl::Status Results(const v1::ResultsRequest& request, const ResultsSink& sink) = 0;
};

// A coordinator database file opened read-only (a running coordinator may be writing
// it: WAL lets it read beside the writer). Nothing is written: leases that have expired
// still show as leased. Not thread-safe.
class DatabaseResults : public ResultsSource {
 public:
  // NotFound when `path` is not a file; FailedPrecondition when it is not a coordinator
  // database or one newer than this build.
  static absl::StatusOr<std::unique_ptr<DatabaseResults>> Open(const std::string& path);

  absl::StatusOr<v1::Sweep> GetSweep(const v1::GetSweepRequest& request) override;
  absl::StatusOr<v1::ListSweepsResponse> ListSweeps(const v1::ListSweepsRequest& request) override;
  absl::Status Results(const v1::ResultsRequest& request, const ResultsSink& sink) override;

 private:
  DatabaseResults(std::unique_ptr<Database> db, int schema_version)
      : db_(std::move(db)), schema_version_(schema_version) {}
  std::unique_ptr<Database> db_;
  const int schema_version_;
};

}  // namespace sf::coordinator

#endif  // SF_COORDINATOR_RESULTS_READER_H_
