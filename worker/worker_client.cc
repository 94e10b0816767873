#include "worker/worker_client.h"

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "sf/v1/worker.grpc.pb.h"

namespace sf::worker {
namespace {

class GrpcWorkerClient : public WorkerClient {
 public:
  GrpcWorkerClient(std::shared_ptr<grpc::Channel> channel, GrpcWorkerClientOptions options)
      : stub_(v1::WorkerService::NewStub(channel)), options_(std::move(options)) {}

  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& request) override {
    return Call<v1::RegisterWorkerResponse>(&v1::WorkerService::Stub::RegisterWorker, request,
                                            "RegisterWorker");
  }

  absl::StatusOr<v1::LeaseResponse> Lease(const v1::LeaseRequest& request) override {
    grpc::ClientContext context;
    PrepareContext(&context, options_.token,
                   absl::Milliseconds(request.wait_ms()) + options_.call_timeout, true);
    {
      absl::MutexLock lock(&mu_);
      if (lease_cancelled_) {
        lease_cancelled_ = false;
        return absl::CancelledError("Lease: the worker is stopping");
      }
      lease_context_ = &context;
    }
    v1::LeaseResponse response;
    grpc::Status status = stub_->Lease(&context, request, &response);
    {
      absl::MutexLock lock(&mu_);
      lease_context_ = nullptr;
      lease_cancelled_ = false;
    }
    if (!status.ok()) return FromGrpcStatus(status, "Lease");
    return response;
  }

  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override {
    return Call<v1::HeartbeatResponse>(&v1::WorkerService::Stub::Heartbeat, request, "Heartbeat");
  }
  absl::StatusOr<v1::ReportSamplesResponse> ReportSamples(
      const v1::ReportSamplesRequest& request) override {
    return Call<v1::ReportSamplesResponse>(&v1::WorkerService::Stub::ReportSamples, request,
                                           "ReportSamples");
  }
  absl::StatusOr<v1::CompleteResponse> Complete(const v1::CompleteRequest& request) override {
    return Call<v1::CompleteResponse>(&v1::WorkerService::Stub::Complete, request, "Complete");
  }
  absl::StatusOr<v1::FailResponse> Fail(const v1::FailRequest& request) override {
    return Call<v1::FailResponse>(&v1::WorkerService::Stub::Fail, request, "Fail");
  }

  void CancelLeasePoll() override {
    absl::MutexLock lock(&mu_);
    if (lease_context_ != nullptr) {
      lease_context_->TryCancel();
    } else {
      lease_cancelled_ = true;
    }
  }

 private:
  template <typename Response, typename Method, typename Request>
  absl::StatusOr<Response> Call(Method method, const Request& request, absl::string_view name) {
    grpc::ClientContext context;
    PrepareContext(&context, options_.token, options_.call_timeout, true);
    Response response;
    grpc::Status status = ((*stub_).*method)(&context, request, &response);
    if (!status.ok()) return FromGrpcStatus(status, name);
    return response;
  }

  std::unique_ptr<v1::WorkerService::Stub> stub_;
  const GrpcWorkerClientOptions options_;
  absl::Mutex mu_;
  grpc::ClientContext* lease_context_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool lease_cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

std::unique_ptr<WorkerClient> NewGrpcWorkerClient(std::shared_ptr<grpc::Channel> channel,
                                                  GrpcWorkerClientOptions options) {
  return std::make_unique<GrpcWorkerClient>(std::move(channel), std::move(options));
}

}  // namespace sf::worker
