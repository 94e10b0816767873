// Built only with SF_TSAN: checks that the TSan build still catches a data race in this
// project's code when that code runs on gRPC's threads, with every suppression of
// cmake/sanitizers/tsan.supp in force (they silence reports whose accesses Debian's
// uninstrumented gRPC and protobuf make or order; docs/sanitizers.md).
//
// A fake WorkerService answers Heartbeat. Each call counts itself in a field of the
// service and then waits until both calls have arrived, so the two calls run at the same
// time on two of gRPC's server threads and the two counts are ordered by nothing. Two
// ctest tests run this program (tests/CMakeLists.txt):
//   tsan_grpc_race_caught   the count is unguarded; the test passes only if TSan
//                           reports the data race between the two counts, both in
//                           CountHeartbeat, on threads that gRPC created.
//   tsan_grpc_race_guarded  the count is made under an absl::Mutex; TSan must report
//                           nothing (a report exits with status 66 and fails it).
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/attributes.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "sf/v1/worker.grpc.pb.h"

namespace sf {
namespace {

constexpr int kConcurrentCalls = 2;

// Heartbeat counts each call (guarded by a mutex or not) and then holds the call until
// kConcurrentCalls calls are in the handler at once.
class RendezvousWorkerService final : public v1::WorkerService::Service {
 public:
  explicit RendezvousWorkerService(bool guard_count) : guard_count_(guard_count) {}

  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest*,
                         v1::HeartbeatResponse*) override {
    if (guard_count_) {
      absl::MutexLock lock(&count_mu_);
      CountHeartbeat();
    } else {
      CountHeartbeat();
    }
    absl::MutexLock lock(&arrived_mu_);
    ++arrived_;
    auto all_arrived = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(arrived_mu_) {
      return arrived_ >= kConcurrentCalls;
    };
    if (!arrived_mu_.AwaitWithTimeout(absl::Condition(&all_arrived), absl::Seconds(60))) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                          "the other Heartbeat call never reached the handler");
    }
    return grpc::Status::OK;
  }

  int64_t heartbeats() {
    absl::MutexLock lock(&count_mu_);
    return heartbeats_;
  }

 private:
  // Not inlined, so that TSan's report names it as the top frame of both accesses.
  ABSL_ATTRIBUTE_NOINLINE void CountHeartbeat() { ++heartbeats_; }

  const bool guard_count_;
  absl::Mutex count_mu_;
  int64_t heartbeats_ = 0;  // guarded by count_mu_ only when guard_count_
  absl::Mutex arrived_mu_;
  int arrived_ ABSL_GUARDED_BY(arrived_mu_) = 0;
};

// Serves `service` on a loopback port, makes kConcurrentCalls Heartbeat calls from as many
// client threads and expects each to succeed.
void CallHeartbeatConcurrently(RendezvousWorkerService& service) {
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);
  auto stub = v1::WorkerService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));

  grpc::Status statuses[kConcurrentCalls];
  std::thread callers[kConcurrentCalls];
  for (int i = 0; i < kConcurrentCalls; ++i) {
    callers[i] = std::thread([&stub, &status = statuses[i], i] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
      v1::HeartbeatRequest request;
      request.set_worker_id(absl::StrCat("worker-", i));
      v1::HeartbeatResponse response;
      status = stub->Heartbeat(&context, request, &response);
    });
  }
  for (std::thread& caller : callers) caller.join();
  server->Shutdown();
  for (const grpc::Status& status : statuses) {
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  EXPECT_EQ(service.heartbeats(), kConcurrentCalls);
}

TEST(TsanGrpcRace, UnguardedCountOnTwoServerThreads) {
  RendezvousWorkerService service(/*guard_count=*/false);
  CallHeartbeatConcurrently(service);
}

TEST(TsanGrpcRace, GuardedCountOnTwoServerThreads) {
  RendezvousWorkerService service(/*guard_count=*/true);
  CallHeartbeatConcurrently(service);
}

}  // namespace
}  // namespace sf
