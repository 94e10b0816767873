// The worker's view of the coordinator's WorkerService, behind an interface so that the
// worker loop is tested with a fake client, and a gRPC implementation for production.
#ifndef SF_WORKER_WORKER_CLIENT_H_
#define SF_WORKER_WORKER_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/client.h"
#include "grpcpp/grpcpp.h"
#include "sf/v1/worker.pb.h"

namespace sf::worker {

// Each call returns the coordinator's answer or its error with the gRPC code as an absl
// code: Unavailable/DeadlineExceeded (retry later), Aborted (the lease is gone: drop the
// job), others (a bug or a bad request). Thread-safe.
class WorkerClient {
 public:
  virtual ~WorkerClient() = default;
  virtual absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& request) = 0;
  // `wait` bounds how long the server may hold the long poll.
  virtual absl::StatusOr<v1::LeaseResponse> Lease(const v1::LeaseRequest& request) = 0;
  virtual absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) = 0;
  virtual absl::StatusOr<v1::ReportSamplesResponse> ReportSamples(
      const v1::ReportSamplesRequest& request) = 0;
  virtual absl::StatusOr<v1::CompleteResponse> Complete(const v1::CompleteRequest& request) = 0;
  virtual absl::StatusOr<v1::FailResponse> Fail(const v1::FailRequest& request) = 0;
  // Cancels a Lease long poll in flight (it returns Cancelled) so that a stopping
  // worker does not wait for the server's poll to end.
  virtual void CancelLeasePoll() = 0;
};

struct GrpcWorkerClientOptions {
  std::string token;                                // bearer token ("" = none)
  absl::Duration call_timeout = absl::Seconds(20);  // every call but Lease
  // Calls wait this long for an unreachable coordinator (wait-for-ready) before failing
  // with Unavailable/DeadlineExceeded; the worker then backs off and tries again.
};

// A client over `channel`. Every call waits for the channel to be ready (a restarting
// coordinator is waited for, up to the call's deadline).
std::unique_ptr<WorkerClient> NewGrpcWorkerClient(std::shared_ptr<grpc::Channel> channel,
                                                  GrpcWorkerClientOptions options);

}  // namespace sf::worker

#endif  // SF_WORKER_WORKER_CLIENT_H_
