// gRPC adapters over the Scheduler: the user-facing sf.v1.Coordinator and the
// worker-facing sf.v1.WorkerService, bearer-token checks, and a server wrapper.
#ifndef SF_COORDINATOR_SERVICE_H_
#define SF_COORDINATOR_SERVICE_H_

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/tls.h"
#include "coordinator/query.h"
#include "coordinator/scheduler.h"
#include "proto/grpc_status.h"
#include "sf/v1/coordinator.grpc.pb.h"
#include "sf/v1/worker.grpc.pb.h"

namespace sf::coordinator {

struct ServerOptions {
  // host:port; port 0 picks a free one (see CoordinatorServer::port()).
  std::string listen = "127.0.0.1:0";
  // Bearer tokens; empty = no check. Without both, only a loopback address is allowed.
  std::string worker_token;
  std::string user_token;
  // PEM files for TLS (docs/coordinator.md, "Security"); empty = plaintext.
  TlsServerFiles tls;
  QueryLimits query_limits;
  int max_message_bytes = 512 << 20;  // a 100,000-job SubmitSweep is ~30 MB
  // Idle threads the synchronous server keeps waiting for calls. gRPC's default (2)
  // makes it start and end a thread for nearly every call once dozens are in flight
  // (64 workers, long polls, group-commit waits); 32 gave +7-10 % jobs/s in
  // coordinator_bench (bench/NOTES.md).
  int max_pollers = 32;
  // host:port of a second, plaintext server that serves only the standard gRPC health
  // service (grpc.health.v1), for probes that cannot present TLS certificates (Kubernetes
  // gRPC probes); "" = none. The main port serves the health service too.
  std::string health_listen;
};

class CoordinatorService final : public v1::Coordinator::Service {
 public:
  CoordinatorService(Scheduler* scheduler, std::string token, QueryLimits limits)
      : scheduler_(scheduler), token_(std::move(token)), limits_(limits) {}

  grpc::Status SubmitSweep(grpc::ServerContext* ctx, const v1::SubmitSweepRequest* request,
                           v1::SubmitSweepResponse* response) override;
  grpc::Status GetSweep(grpc::ServerContext* ctx, const v1::GetSweepRequest* request,
                        v1::Sweep* response) override;
  grpc::Status ListSweeps(grpc::ServerContext* ctx, const v1::ListSweepsRequest* request,
                          v1::ListSweepsResponse* response) override;
  grpc::Status WatchSweep(grpc::ServerContext* ctx, const v1::WatchSweepRequest* request,
                          grpc::ServerWriter<v1::SweepEvent>* writer) override;
  grpc::Status CancelSweep(grpc::ServerContext* ctx, const v1::CancelSweepRequest* request,
                           v1::CancelSweepResponse* response) override;
  grpc::Status RetryFailed(grpc::ServerContext* ctx, const v1::RetryFailedRequest* request,
                           v1::RetryFailedResponse* response) override;
  grpc::Status Query(grpc::ServerContext* ctx, const v1::QueryRequest* request,
                     grpc::ServerWriter<v1::QueryResponse>* writer) override;
  grpc::Status ListWorkers(grpc::ServerContext* ctx, const v1::ListWorkersRequest* request,
                           v1::ListWorkersResponse* response) override;
  grpc::Status Results(grpc::ServerContext* ctx, const v1::ResultsRequest* request,
                       grpc::ServerWriter<v1::ResultsResponse>* writer) override;

 private:
  Scheduler* const scheduler_;
  const std::string token_;
  const QueryLimits limits_;
};

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  WorkerServiceImpl(Scheduler* scheduler, std::string token)
      : scheduler_(scheduler), token_(std::move(token)) {}

  grpc::Status RegisterWorker(grpc::ServerContext* ctx, const v1::RegisterWorkerRequest* request,
                              v1::RegisterWorkerResponse* response) override;
  grpc::Status Lease(grpc::ServerContext* ctx, const v1::LeaseRequest* request,
                     v1::LeaseResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;
  grpc::Status ReportSamples(grpc::ServerContext* ctx, const v1::ReportSamplesRequest* request,
                             v1::ReportSamplesResponse* response) override;
  grpc::Status Complete(grpc::ServerContext* ctx, const v1::CompleteRequest* request,
                        v1::CompleteResponse* response) override;
  grpc::Status Fail(grpc::ServerContext* ctx, const v1::FailRequest* request,
                    v1::FailResponse* response) override;

 private:
  Scheduler* const scheduler_;
  const std::string token_;
};

// A running gRPC server with both services.
class CoordinatorServer {
 public:
  // Binds and starts serving. FailedPrecondition for a non-loopback address without
  // tokens; InvalidArgument/NotFound (naming the file) for unusable TLS files;
  // Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(Scheduler* scheduler,
                                                                  const ServerOptions& options);
  ~CoordinatorServer();

  int port() const { return port_; }
  // The port of the health-only server (0 when ServerOptions::health_listen is empty).
  int health_port() const { return health_port_; }
  // Wakes long polls and streams, then stops, waiting up to `grace` for calls.
  void Shutdown(absl::Duration grace = absl::Seconds(5));
  void Wait();

 private:
  CoordinatorServer() = default;
  Scheduler* scheduler_ = nullptr;
  std::unique_ptr<CoordinatorService> user_service_;
  std::unique_ptr<WorkerServiceImpl> worker_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Server> health_server_;
  // Answers UNIMPLEMENTED for every method of the health-only server but the health
  // service; gRPC builds no server without at least one service of its own.
  std::unique_ptr<grpc::CallbackGenericService> health_server_rest_;
  int port_ = 0;
  int health_port_ = 0;
  bool shut_down_ = false;
};

// Whether `listen` (host:port) names a loopback interface.
bool IsLoopbackAddress(const std::string& listen);

}  // namespace sf::coordinator

#endif  // SF_COORDINATOR_SERVICE_H_
