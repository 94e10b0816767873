#include "coordinator/service.h"

#include <grpcpp/grpcpp.h>

#include <thread>

#include "common/clock.h"
#include "common/testing/status_matchers.h"
#include "coordinator/health_check.h"
#include "coordinator/testing/test_jobs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf::coordinator {
namespace {

using ::sf::testing::IsOk;
using ::testing::ElementsAre;
using testing::MakeJob;
using testing::MakeSample;
using testing::MakeWorker;

class ServiceTest : public ::testing::Test {
 protected:
  void Start(ServerOptions options = {}) {
    auto s = Scheduler::Open(db_.path(), &RealClock());
    ASSERT_THAT(s.status(), IsOk());
    scheduler_ = std::move(*s);
    auto server = CoordinatorServer::Start(scheduler_.get(), options);
    ASSERT_THAT(server.status(), IsOk());
    server_ = std::move(*server);
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                       grpc::InsecureChannelCredentials());
    user_ = v1::Coordinator::NewStub(channel);
    worker_ = v1::WorkerService::NewStub(channel);
  }

  void TearDown() override {
    server_.reset();
    scheduler_.reset();
  }

  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token = "") {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    return ctx;
  }

  testing::TempDb db_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<v1::Coordinator::Stub> user_;
  std::unique_ptr<v1::WorkerService::Stub> worker_;
};

TEST_F(ServiceTest, Health_ServingOnMainAndHealthPorts_NotAfterShutdown) {
  ServerOptions options;
  options.health_listen = "127.0.0.1:0";
  Start(options);
  ASSERT_GT(server_->health_port(), 0);
  auto main_channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                          grpc::InsecureChannelCredentials());
  auto health_channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->health_port()),
                                            grpc::InsecureChannelCredentials());
  EXPECT_THAT(CheckHealth(main_channel, "", absl::Seconds(10)), IsOk());
  EXPECT_THAT(CheckHealth(health_channel, "", absl::Seconds(10)), IsOk());
  // The health-only port serves nothing else.
  auto other = v1::Coordinator::NewStub(health_channel);
  v1::ListSweepsResponse sweeps;
  EXPECT_EQ(other->ListSweeps(Ctx().get(), v1::ListSweepsRequest(), &sweeps).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  server_->Shutdown(absl::ZeroDuration());
  EXPECT_FALSE(CheckHealth(health_channel, "", absl::Seconds(2)).ok());
}

TEST_F(ServiceTest, Health_OnTheMainPortWithTokens_AnsweredWithoutAToken) {
  // Both tokens set: the token is checked before a call's message is read, except for
  // the health service, which probes call without one.
  ServerOptions options;
  options.worker_token = "wtok";
  options.user_token = "utok";
  Start(options);
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                     grpc::InsecureChannelCredentials());
  EXPECT_THAT(CheckHealth(channel, "", absl::Seconds(10)), IsOk());
  v1::ListSweepsResponse sweeps;
  EXPECT_EQ(user_->ListSweeps(Ctx().get(), v1::ListSweepsRequest(), &sweeps).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(user_->ListSweeps(Ctx("utok").get(), v1::ListSweepsRequest(), &sweeps).ok());
}

TEST_F(ServiceTest, FullJobLifecycle_OverGrpc) {
  Start();
  v1::SubmitSweepRequest submit;
  submit.set_sweep_name("s");
  *submit.add_jobs() = MakeJob("a", {.samples = 2});
  v1::SubmitSweepResponse submitted;
  ASSERT_TRUE(user_->SubmitSweep(Ctx().get(), submit, &submitted).ok());
  v1::RegisterWorkerResponse reg;
  ASSERT_TRUE(worker_->RegisterWorker(Ctx().get(), MakeWorker("w1"), &reg).ok());
  EXPECT_EQ(reg.lease_ttl_ms(), 60000);
  v1::LeaseRequest lease_req;
  lease_req.set_worker_id("w1");
  v1::LeaseResponse lease;
  ASSERT_TRUE(worker_->Lease(Ctx().get(), lease_req, &lease).ok());
  ASSERT_TRUE(lease.has_lease());
  v1::ReportSamplesRequest report;
  report.set_lease_token(lease.lease().lease_token());
  *report.add_samples() = MakeSample(0);
  *report.add_samples() = MakeSample(1);
  v1::ReportSamplesResponse reported;
  ASSERT_TRUE(worker_->ReportSamples(Ctx().get(), report, &reported).ok());
  EXPECT_THAT(reported.accepted(), ElementsAre(0, 1));
  v1::CompleteRequest complete;
  complete.set_lease_token(lease.lease().lease_token());
  complete.mutable_result()->set_mean(1.0);
  v1::CompleteResponse completed;
  ASSERT_TRUE(worker_->Complete(Ctx().get(), complete, &completed).ok());
  // A repeat is ABORTED: status codes cross the wire one to one.
  grpc::Status again = worker_->Complete(Ctx().get(), complete, &completed);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::ABORTED);

  // Watch from the start: all events, then the stream ends with the sweep.
  v1::WatchSweepRequest watch;
  watch.set_sweep_id(submitted.sweep_id());
  auto ctx = Ctx();
  auto reader = user_->WatchSweep(ctx.get(), watch);
  std::vector<v1::SweepEvent> events;
  v1::SweepEvent e;
  while (reader->Read(&e)) events.push_back(e);
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back().kind(), v1::EVENT_KIND_SWEEP_FINISHED);
  EXPECT_EQ(events.back().counts().done(), 1);
  // Resume after the third event: only the rest comes.
  watch.set_after_sequence(events[2].sequence());
  auto ctx2 = Ctx();
  auto reader2 = user_->WatchSweep(ctx2.get(), watch);
  std::vector<int64_t> resumed;
  while (reader2->Read(&e)) resumed.push_back(e.sequence());
  ASSERT_TRUE(reader2->Finish().ok());
  ASSERT_EQ(resumed.size(), events.size() - 3);
  EXPECT_EQ(resumed.front(), events[3].sequence());

  v1::ResultsRequest results;
  results.add_models("m7b");
  auto ctx3 = Ctx();
  auto rows = user_->Results(ctx3.get(), results);
  v1::ResultsResponse page;
  int n = 0;
  while (rows->Read(&page)) n += page.rows_size();
  ASSERT_TRUE(rows->Finish().ok());
  EXPECT_EQ(n, 1);

  v1::QueryRequest query;
  query.set_sql("SELECT COUNT(*) FROM samples");
  auto ctx4 = Ctx();
  auto qrows = user_->Query(ctx4.get(), query);
  v1::QueryResponse qr;
  ASSERT_TRUE(qrows->Read(&qr));
  EXPECT_EQ(qr.rows(0).values(0).int_value(), 2);
  while (qrows->Read(&qr)) {
  }
  ASSERT_TRUE(qrows->Finish().ok());
  query.set_sql("DELETE FROM samples");
  auto ctx5 = Ctx();
  auto denied = user_->Query(ctx5.get(), query);
  while (denied->Read(&qr)) {
  }
  EXPECT_EQ(denied->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(ServiceTest, Lease_LongPoll_WakesOnSubmit) {
  Start();
  v1::RegisterWorkerResponse reg;
  ASSERT_TRUE(worker_->RegisterWorker(Ctx().get(), MakeWorker("w1"), &reg).ok());
  v1::LeaseResponse lease;
  grpc::Status status;
  std::thread poller([&] {
    v1::LeaseRequest r;
    r.set_worker_id("w1");
    r.set_wait_ms(15000);
    status = worker_->Lease(Ctx().get(), r, &lease);
  });
  const absl::Time start = absl::Now();
  v1::SubmitSweepRequest submit;
  submit.set_sweep_name("s");
  *submit.add_jobs() = MakeJob("a");
  v1::SubmitSweepResponse submitted;
  ASSERT_TRUE(user_->SubmitSweep(Ctx().get(), submit, &submitted).ok());
  poller.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(lease.has_lease());
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_F(ServiceTest, Lease_NothingQueued_EmptyAfterWait) {
  Start();
  v1::RegisterWorkerResponse reg;
  ASSERT_TRUE(worker_->RegisterWorker(Ctx().get(), MakeWorker("w1"), &reg).ok());
  v1::LeaseRequest r;
  r.set_worker_id("w1");
  r.set_wait_ms(50);
  v1::LeaseResponse lease;
  ASSERT_TRUE(worker_->Lease(Ctx().get(), r, &lease).ok());
  EXPECT_FALSE(lease.has_lease());
  // A client without a deadline is served too (the wait is still capped).
  grpc::ClientContext no_deadline;
  ASSERT_TRUE(worker_->Lease(&no_deadline, r, &lease).ok());
  EXPECT_FALSE(lease.has_lease());
}

TEST_F(ServiceTest, Tokens_CheckedPerService) {
  ServerOptions options;
  options.worker_token = "wtok";
  options.user_token = "utok";
  Start(options);
  v1::ListSweepsRequest list;
  v1::ListSweepsResponse sweeps;
  EXPECT_EQ(user_->ListSweeps(Ctx().get(), list, &sweeps).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(user_->ListSweeps(Ctx("wtok").get(), list, &sweeps).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(user_->ListSweeps(Ctx("utok").get(), list, &sweeps).ok());
  v1::RegisterWorkerResponse reg;
  EXPECT_EQ(worker_->RegisterWorker(Ctx("utok").get(), MakeWorker("w1"), &reg).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(worker_->RegisterWorker(Ctx("wtok").get(), MakeWorker("w1"), &reg).ok());
}

TEST(ServerTest, NonLoopbackWithoutTokens_Refused) {
  FakeClock clock;
  testing::TempDb db;
  auto scheduler = Scheduler::Open(db.path(), &clock);
  ASSERT_THAT(scheduler.status(), IsOk());
  ServerOptions options;
  options.listen = "0.0.0.0:0";
  EXPECT_EQ(CoordinatorServer::Start(scheduler->get(), options).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1:5"));
  EXPECT_TRUE(IsLoopbackAddress("[::1]:5"));
  EXPECT_FALSE(IsLoopbackAddress("10.0.0.1:5"));
}

TEST(ServerTest, IsLoopbackAddress_OnlyLoopbackAddressesAndLocalhost) {
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.2:5"));
  EXPECT_TRUE(IsLoopbackAddress("127.255.1.9:5"));
  EXPECT_TRUE(IsLoopbackAddress("localhost:5"));
  // A host name is resolved by DNS: "127." at its start says nothing about where it is.
  EXPECT_FALSE(IsLoopbackAddress("127.evil.example:5"));
  EXPECT_FALSE(IsLoopbackAddress("127.0.0.1.example:5"));
  EXPECT_FALSE(IsLoopbackAddress("1270.0.0.1:5"));
}

TEST(ServerTest, PortAlreadyServed_SecondServerRefused) {
  FakeClock clock;
  testing::TempDb db1, db2;
  auto first_scheduler = Scheduler::Open(db1.path(), &clock);
  auto second_scheduler = Scheduler::Open(db2.path(), &clock);
  ASSERT_THAT(first_scheduler.status(), IsOk());
  ASSERT_THAT(second_scheduler.status(), IsOk());
  auto first = CoordinatorServer::Start(first_scheduler->get(), ServerOptions());
  ASSERT_THAT(first.status(), IsOk());
  ServerOptions same_port;
  same_port.listen = absl::StrCat("127.0.0.1:", (*first)->port());
  // Two servers on one port would split clients' calls between two databases.
  auto second = CoordinatorServer::Start(second_scheduler->get(), same_port);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), ::testing::HasSubstr(same_port.listen));
}

TEST(ServerTest, UnusableListenAddress_ErrorWithoutCrash) {
  FakeClock clock;
  testing::TempDb db;
  auto scheduler = Scheduler::Open(db.path(), &clock);
  ASSERT_THAT(scheduler.status(), IsOk());
  ServerOptions options;
  options.listen = "127.0.0.1:notaport";
  auto server = CoordinatorServer::Start(scheduler->get(), options);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(server.status().message(), ::testing::HasSubstr("127.0.0.1:notaport"));
}

TEST(StatusConversionTest, RoundTrip_KeepsCodeAndMessage) {
  for (int code = 0; code <= 16; ++code) {
    absl::Status s(static_cast<absl::StatusCode>(code), code ? "msg" : "");
    absl::Status back = FromGrpcStatus(ToGrpcStatus(s));
    EXPECT_EQ(back.code(), s.code());
    EXPECT_EQ(back.message(), s.message());
  }
}

}  // namespace
}  // namespace sf::coordinator
