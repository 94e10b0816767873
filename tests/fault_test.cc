// Multi-process fault tests with the real binaries on loopback: sf-coordinator and
// sf-test-worker (sf-worker with the deterministic test evaluator). Workers and the
// coordinator are killed with SIGKILL mid-sweep; every job's samples must still arrive
// exactly once.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "cli/progress.h"
#include "cli/remote.h"
#include "cli/sweep_ops.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "coordinator/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"
#include "tests/testing/fault_fixture.h"
#include "tests/testing/process.h"
#include "worker/testing/test_evaluator.h"

namespace sf {
namespace {

using ::sf::testing::FaultTest;
using ::sf::testing::IsOk;
using ::sf::testing::Process;
using ::sf::testing::ReadDb;
using ::sf::testing::TestKey;
using worker::testing::TestScore;

TEST_F(FaultTest, WorkerKilledMidJob_JobCompletesElsewhereExactlyOnce) {
  const int port = StartCoordinator();
  ASSERT_GT(port, 0);
  const int64_t sweep = Submit(testing::TestSweep("kill-worker", 6, 10));
  auto victim = StartWorker("victim", port, 40);
  AwaitSamples(sweep, 4);
  victim->Signal(SIGKILL);
  EXPECT_EQ(victim->Wait(), 128 + SIGKILL);
  // Another worker takes over once the lease expires; the victim comes back with its
  // outbox, re-sends what was not acknowledged and releases its old lease.
  auto rescuer = StartWorker("rescuer", port, 5);
  auto revived = StartWorker("victim", port, 5);
  const v1::Sweep done = WaitFinished(sweep);
  EXPECT_EQ(done.counts().done(), 6);
  EXPECT_EQ(done.counts().failed(), 0);
  ExpectExactlyOnce(6, 10);
  EXPECT_TRUE(rescuer->Running());
  rescuer->Signal(SIGTERM);
  revived->Signal(SIGTERM);
  EXPECT_EQ(rescuer->Wait(), 0);
  EXPECT_EQ(revived->Wait(), 0);
}

TEST_F(FaultTest, CoordinatorKilledMidSweep_RestartsAndSweepCompletesExactlyOnce) {
  const int port = StartCoordinator();
  ASSERT_GT(port, 0);
  const int64_t sweep = Submit(testing::TestSweep("kill-coordinator", 8, 10));
  auto w1 = StartWorker("w1", port, 20);
  auto w2 = StartWorker("w2", port, 20);
  // sfctl's watch loop follows the sweep across the restart, resuming its event stream.
  std::string progress;
  v1::Sweep watched;
  std::thread watcher([&] { watched = WaitFinished(sweep, &progress); });
  AwaitSamples(sweep, 15);
  coordinator_->Signal(SIGKILL);
  EXPECT_EQ(coordinator_->Wait(), 128 + SIGKILL);
  ASSERT_EQ(StartCoordinator(port), port);
  watcher.join();
  EXPECT_EQ(watched.state(), v1::SWEEP_STATE_FINISHED);
  EXPECT_EQ(watched.counts().done(), 8);
  EXPECT_THAT(progress, ::testing::HasSubstr("finished"));
  // The outage was shown while it lasted, and its end.
  EXPECT_THAT(progress, ::testing::HasSubstr("coordinator unreachable"));
  EXPECT_THAT(progress,
              ::testing::HasSubstr("reconnecting (the counts above may be stale) ... back"));
  ExpectExactlyOnce(8, 10);
  // The workers rode out the restart.
  EXPECT_TRUE(w1->Running());
  EXPECT_TRUE(w2->Running());
  w1->Signal(SIGTERM);
  w2->Signal(SIGTERM);
  EXPECT_EQ(w1->Wait(), 0);
  EXPECT_EQ(w2->Wait(), 0);
}

TEST_F(FaultTest, WorkerSigterm_ReleasesItsLeaseAsPreemption) {
  const int port = StartCoordinator();
  ASSERT_GT(port, 0);
  const int64_t sweep = Submit(testing::TestSweep("sigterm", 1, 40));
  auto first = StartWorker("first", port, 50);
  AwaitSamples(sweep, 3);
  first->Signal(SIGTERM);
  EXPECT_EQ(first->Wait(), 0);
  auto sweep_state = remote_->FindSweep(absl::StrCat(sweep));
  ASSERT_THAT(sweep_state, IsOk());
  EXPECT_EQ(sweep_state->counts().preemptions(), 1);
  EXPECT_EQ(sweep_state->counts().failed(), 0);
  EXPECT_EQ(sweep_state->counts().queued(), 1);  // back in the queue at once, no expiry wait
  auto second = StartWorker("second", port, 1);
  const v1::Sweep done = WaitFinished(sweep);
  EXPECT_EQ(done.counts().done(), 1);
  ExpectExactlyOnce(1, 40);
}

// Peak resident memory (VmHWM) of process `pid`, in bytes; -1 when unreadable.
int64_t PeakResidentBytes(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    int64_t kib = 0;
    if (absl::StartsWith(line, "VmHWM:") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::StripSuffix(line.substr(6), "kB")),
                         &kib)) {
      return kib * 1024;
    }
  }
  return -1;
}

// The most a coordinator's peak resident memory may grow over the three refused 64 MiB
// calls of BigRequestTest: reading one body before refusing it costs at least its 64 MiB.
// Under ThreadSanitizer (shadow memory) and AddressSanitizer (shadow memory and the
// quarantine that keeps freed blocks resident) gRPC's transport and TLS buffers alone grow
// it by more than 32 MiB (docs/sanitizers.md); the bound there is the size of one body.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int64_t kMaxGrowthOverRefusedCalls = int64_t{64} << 20;
#else
constexpr int64_t kMaxGrowthOverRefusedCalls = int64_t{32} << 20;
#endif

// Starts sf-coordinator with both tokens (and `extra_flags`), sends three
// unauthenticated 64 MiB SubmitSweep calls through `credentials` and returns how much
// the coordinator's peak resident memory grew; each call must be UNAUTHENTICATED.
class BigRequestTest : public FaultTest {
 protected:
  int64_t GrowthOverUnauthenticatedCalls(std::shared_ptr<grpc::ChannelCredentials> credentials,
                                         const std::vector<std::string>& extra_flags = {}) {
    std::ofstream(dir_ / "worker.token") << "worker-secret\n";
    std::ofstream(dir_ / "user.token") << "user-secret\n";
    std::vector<std::string> flags = {"--worker-token", (dir_ / "worker.token").string(),
                                      "--user-token", (dir_ / "user.token").string()};
    flags.insert(flags.end(), extra_flags.begin(), extra_flags.end());
    const int port = StartCoordinator(0, flags);
    if (port <= 0) return -1;
    auto stub = v1::Coordinator::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), std::move(credentials)));
    const int64_t before = PeakResidentBytes(coordinator_->pid());
    if (before <= 0) return -1;
    v1::SubmitSweepRequest big;
    big.set_sweep_name("big");
    big.set_spec_yaml(std::string(64 << 20, 'x'));
    for (int i = 0; i < 3; ++i) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      v1::SubmitSweepResponse response;
      EXPECT_EQ(stub->SubmitSweep(&context, big, &response).error_code(),
                grpc::StatusCode::UNAUTHENTICATED);
    }
    return PeakResidentBytes(coordinator_->pid()) - before;
  }
};

TEST_F(BigRequestTest, UnauthenticatedBigRequests_RefusedBeforeTheirBodyIsRead) {
  const int64_t growth = GrowthOverUnauthenticatedCalls(grpc::InsecureChannelCredentials());
  ASSERT_GE(growth, 0);
  // Reading each 64 MiB body before refusing it costs the coordinator at least that much.
  EXPECT_LT(growth, kMaxGrowthOverRefusedCalls)
      << "the coordinator grew by " << (growth >> 20) << " MiB";
}

TEST_F(BigRequestTest, UnauthenticatedBigRequestsOverTls_RefusedBeforeTheirBodyIsRead) {
  const std::string data = SF_TLS_TEST_DATA;
  std::ifstream ca_file(data + "/ca.pem");
  std::stringstream ca;
  ca << ca_file.rdbuf();
  ASSERT_FALSE(ca.str().empty()) << data << "/ca.pem";
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = ca.str();
  const int64_t growth = GrowthOverUnauthenticatedCalls(
      grpc::SslCredentials(tls),
      {"--tls-cert", data + "/server.pem", "--tls-key", data + "/server.key"});
  ASSERT_GE(growth, 0);
  EXPECT_LT(growth, kMaxGrowthOverRefusedCalls)
      << "the coordinator grew by " << (growth >> 20) << " MiB";
}

}  // namespace
}  // namespace sf
