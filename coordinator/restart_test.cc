// Real-process test: SIGKILL sf-coordinator mid-sweep, restart it on the same
// database, and check that leases survive and every job's result lands exactly once.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/logging.h"
#include "coordinator/service.h"
#include "coordinator/testing/test_jobs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace sf::coordinator {
namespace {

using testing::MakeJob;
using testing::MakeSample;
using testing::MakeWorker;

// Set by CMake to the sf-coordinator built alongside this test.
const std::string g_binary = SF_COORDINATOR_BINARY;

// A running sf-coordinator child process.
class Process {
 public:
  Process(const std::string& db) {
    int fds[2];
    SF_CHECK(pipe(fds) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::vector<std::string> args = {g_binary, "--listen",    "127.0.0.1:0", "--db",
                                     db,       "--log-level", "warning"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    SF_CHECK(posix_spawn(&pid_, g_binary.c_str(), &actions, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    FILE* out = fdopen(fds[0], "r");
    char line[256] = {0};
    if (fgets(line, sizeof(line), out) != nullptr) {
      std::sscanf(line, "sf-coordinator listening on port %d", &port_);
    }
    fclose(out);
    auto channel =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials());
    user = v1::Coordinator::NewStub(channel);
    worker = v1::WorkerService::NewStub(channel);
  }
  ~Process() {
    if (pid_ > 0) Stop(SIGKILL);
  }
  int port() const { return port_; }
  // Sends `sig` and returns the exit status.
  int Stop(int sig) {
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  std::unique_ptr<v1::Coordinator::Stub> user;
  std::unique_ptr<v1::WorkerService::Stub> worker;

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  return ctx;
}

std::string LeaseOne(v1::WorkerService::Stub* worker) {
  v1::LeaseRequest r;
  r.set_worker_id("w1");
  v1::LeaseResponse lease;
  EXPECT_TRUE(worker->Lease(Ctx().get(), r, &lease).ok());
  return lease.has_lease() ? lease.lease().lease_token() : "";
}

grpc::Status Complete(v1::WorkerService::Stub* worker, const std::string& token) {
  v1::CompleteRequest c;
  c.set_lease_token(token);
  c.mutable_result()->set_mean(1);
  v1::CompleteResponse resp;
  return worker->Complete(Ctx().get(), c, &resp);
}

TEST(RestartTest, SigkillMidSweep_RestartCompletesEveryJobOnce) {
  testing::TempDb db;
  std::string token_a;
  {
    Process first(db.path());
    ASSERT_GT(first.port(), 0);
    v1::SubmitSweepRequest submit;
    submit.set_sweep_name("s");
    for (const char* key : {"a", "b", "c"}) *submit.add_jobs() = MakeJob(key, {.samples = 2});
    v1::SubmitSweepResponse submitted;
    ASSERT_TRUE(first.user->SubmitSweep(Ctx().get(), submit, &submitted).ok());
    v1::RegisterWorkerResponse reg;
    ASSERT_TRUE(first.worker->RegisterWorker(Ctx().get(), MakeWorker("w1"), &reg).ok());
    token_a = LeaseOne(first.worker.get());
    ASSERT_FALSE(token_a.empty());
    v1::ReportSamplesRequest report;
    report.set_lease_token(token_a);
    *report.add_samples() = MakeSample(0);
    v1::ReportSamplesResponse reported;
    ASSERT_TRUE(first.worker->ReportSamples(Ctx().get(), report, &reported).ok());
    int status = first.Stop(SIGKILL);
    ASSERT_TRUE(WIFSIGNALED(status));
  }
  Process second(db.path());
  ASSERT_GT(second.port(), 0);
  // The worker's lease survived the crash: its heartbeat renews it.
  v1::HeartbeatRequest hb;
  hb.set_worker_id("w1");
  hb.add_leases()->set_lease_token(token_a);
  v1::HeartbeatResponse hb_resp;
  ASSERT_TRUE(second.worker->Heartbeat(Ctx().get(), hb, &hb_resp).ok());
  EXPECT_EQ(hb_resp.stop_size(), 0);
  // A duplicate of the sample sent before the crash, then the rest.
  v1::ReportSamplesRequest report;
  report.set_lease_token(token_a);
  *report.add_samples() = MakeSample(0);
  *report.add_samples() = MakeSample(1);
  v1::ReportSamplesResponse reported;
  ASSERT_TRUE(second.worker->ReportSamples(Ctx().get(), report, &reported).ok());
  EXPECT_THAT(reported.duplicates(), ::testing::ElementsAre(0));
  ASSERT_TRUE(Complete(second.worker.get(), token_a).ok());
  for (int i = 0; i < 2; ++i) {
    std::string token = LeaseOne(second.worker.get());
    ASSERT_FALSE(token.empty());
    ASSERT_TRUE(Complete(second.worker.get(), token).ok());
  }
  v1::GetSweepRequest get;
  get.set_name("s");
  v1::Sweep sweep;
  ASSERT_TRUE(second.user->GetSweep(Ctx().get(), get, &sweep).ok());
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_FINISHED);
  EXPECT_EQ(sweep.counts().done(), 3);
  v1::QueryRequest q;
  q.set_sql("SELECT (SELECT COUNT(*) FROM results), (SELECT COUNT(*) FROM samples)");
  auto ctx = Ctx();
  auto reader = second.user->Query(ctx.get(), q);
  v1::QueryResponse rows;
  ASSERT_TRUE(reader->Read(&rows));
  EXPECT_EQ(rows.rows(0).values(0).int_value(), 3);
  EXPECT_EQ(rows.rows(0).values(1).int_value(), 2);
  while (reader->Read(&rows)) {
  }
  ASSERT_TRUE(reader->Finish().ok());
  // SIGTERM is a clean shutdown.
  int status = second.Stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace sf::coordinator
