// Slurm for real: stands up a single-node Slurm cluster from Debian's packages
// (tests/slurm/single-node-slurm.sh), starts sf-coordinator with
// deploy/slurm/sf-coordinator.sh, and submits the real deploy/slurm/ sbatch scripts with
// CPU workers (sf-test-worker, sf-worker with the deterministic test evaluator). Midway
// one allocation is scancel'd and one array task is requeued; the sweep must still finish
// with every job's samples stored exactly once, the cancelled workers' jobs released as
// preemptions (no failed attempt), and every worker listed with its Slurm job and node
// (ListWorkers, and the sfctl binary's `workers` table).
// Skips (with the reason) only when Slurm cannot be started on this machine.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/progress.h"
#include "cli/remote.h"
#include "cli/sweep_ops.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "coordinator/client.h"
#include "coordinator/sqlite.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"
#include "tests/testing/process.h"
#include "worker/testing/test_evaluator.h"

namespace sf {
namespace {

using ::sf::testing::IsOk;
using ::sf::testing::Process;
using ::sf::testing::ReadDb;
using ::sf::testing::TestKey;
using worker::testing::TestScore;

constexpr int kJobs = 16;
constexpr int kSamples = 10;

std::string SourcePath(const std::string& relative) {
  const char* root = std::getenv("SF_SOURCE_DIR");
  return absl::StrCat(root != nullptr ? root : ".", "/", relative);
}

// Runs `command` with /bin/sh; its stdout goes to `out` (stderr stays with the test's).
// Returns the exit status, or -1 when it could not run.
int Shell(const std::string& command, std::string* out = nullptr) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string text;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) text.append(buffer, n);
  const int status = pclose(pipe);
  if (out != nullptr) *out = std::string(absl::StripAsciiWhitespace(text));
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class SlurmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = sf::testing::FreshTestDir();
    slurm_dir_ = dir_ / "slurm";
    const std::string start_log = (dir_ / "slurm-start.log").string();
    const int rc = Shell(absl::StrCat("bash ", SourcePath("tests/slurm/single-node-slurm.sh"),
                                      " start ", slurm_dir_.string(), " 2>", start_log));
    if (rc == 77) {
      GTEST_SKIP() << "Slurm cannot be started here: " << ReadFile(start_log);
    }
    ASSERT_EQ(rc, 0) << "tests/slurm/single-node-slurm.sh start failed: " << ReadFile(start_log);
    slurm_started_ = true;
    setenv("SLURM_CONF", (slurm_dir_ / "slurm.conf").c_str(), 1);
  }

  void TearDown() override {
    if (!slurm_started_) return;
    for (const std::string& job : jobs_) Shell(absl::StrCat("scancel ", job, " 2>/dev/null"));
    // Job steps outlive slurmd: let them end before the daemons stop.
    const absl::Time deadline = absl::Now() + absl::Seconds(40);
    std::string left = "?";
    while (!left.empty() && absl::Now() < deadline) {
      Shell("squeue -h -o %i 2>/dev/null", &left);
      if (!left.empty()) absl::SleepFor(absl::Milliseconds(200));
    }
    Shell(absl::StrCat("bash ", SourcePath("tests/slurm/single-node-slurm.sh"), " stop ",
                       slurm_dir_.string()));
  }

  // Starts sf-coordinator through deploy/slurm/sf-coordinator.sh on a free loopback port.
  void StartCoordinator() {
    const std::filesystem::path state = dir_ / "coordinator";
    setenv("SF_STATE_DIR", state.c_str(), 1);
    setenv("SF_LISTEN", "127.0.0.1:0", 1);
    setenv("SF_COORDINATOR_BIN", SF_COORDINATOR_BIN, 1);
    coordinator_ =
        Process::Start({"/bin/bash", SourcePath("deploy/slurm/sf-coordinator.sh"), "--lease-ttl",
                        "5s", "--backoff", "200ms", "--max-lease-wait", "1s"},
                       (dir_ / "coordinator.log").string());
    ASSERT_NE(coordinator_, nullptr);
    port_ = coordinator_->ReadPort(absl::Seconds(20));
    ASSERT_GT(port_, 0) << "sf-coordinator did not start; see " << (dir_ / "coordinator.log");
    db_ = (state / "coordinator.db").string();
    worker_token_ = (state / "worker.token").string();
    user_token_file_ = (state / "user.token").string();
    auto user_token = ReadTokenFile(user_token_file_);
    ASSERT_THAT(user_token, IsOk());
    ConnectionOptions c;
    c.address = absl::StrCat("127.0.0.1:", port_);
    c.token = *user_token;
    remote_ = std::make_unique<cli::Remote>(MakeCoordinatorChannel(c), c.address, *user_token,
                                            absl::Seconds(10));
  }

  // sbatch of a deploy/slurm/ script with CPU workers; returns the job id.
  std::string Submit(const std::string& script, const std::string& sbatch_flags) {
    setenv("SF_COORDINATOR", absl::StrCat("127.0.0.1:", port_).c_str(), 1);
    setenv("SF_TOKEN_FILE", worker_token_.c_str(), 1);
    setenv("SF_WORKER_BIN", SF_TEST_WORKER_BIN, 1);
    setenv("SF_WORKER_STATE_DIR", (dir_ / "worker-state").c_str(), 1);
    setenv("SF_WORKER_ARGS", "--sample-ms 150 --lease-wait 1", 1);
    std::string id;
    const int rc = Shell(absl::StrCat("sbatch --parsable --chdir ", dir_.string(), " ",
                                      sbatch_flags, " ", SourcePath("deploy/slurm/" + script)),
                         &id);
    EXPECT_EQ(rc, 0) << "sbatch " << script << " failed";
    jobs_.push_back(id);
    return id;
  }

  std::string JobState(const std::string& job) {
    std::string state;
    Shell(absl::StrCat("squeue -h -j ", job, " -o %T 2>/dev/null"), &state);
    return state;
  }

  v1::ListWorkersResponse Workers() {
    grpc::ClientContext context;
    remote_->Prepare(&context);
    v1::ListWorkersResponse response;
    EXPECT_TRUE(remote_->stub().ListWorkers(&context, v1::ListWorkersRequest(), &response).ok());
    return response;
  }

  // Waits (up to 60 s) until a worker of Slurm job `job` holds a lease.
  bool AwaitLeaseHeldBy(const std::string& job) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      const v1::ListWorkersResponse listed = Workers();
      for (const v1::WorkerInfo& w : listed.workers()) {
        if (w.slurm_job_id() == job && w.leased_job_keys_size() > 0) return true;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }

  v1::Sweep WaitFinished(int64_t sweep_id) {
    std::ostringstream progress;
    cli::ProgressDisplay display(progress, false, &RealClock(), absl::ZeroDuration());
    cli::WatchOptions options;
    options.reconnect_limit = absl::Seconds(30);
    auto sweep = cli::WatchUntilDone(*remote_, sweep_id, display, options, &RealClock());
    EXPECT_THAT(sweep, IsOk());
    return sweep.value_or(v1::Sweep());
  }

  // Failed attempts and preemptions over every job, from the coordinator's database.
  std::pair<int64_t, int64_t> AttemptsAndPreemptions() {
    auto db = coordinator::Database::OpenReadOnly(db_);
    EXPECT_THAT(db.status(), IsOk());
    if (!db.ok()) return {-1, -1};
    auto st = (*db)->Prepare("SELECT SUM(attempts), SUM(preemptions) FROM jobs");
    EXPECT_THAT(st.status(), IsOk());
    if (!st.ok() || !*(*st)->Step()) return {-1, -1};
    return {(*st)->Int(0), (*st)->Int(1)};
  }

  std::filesystem::path dir_, slurm_dir_;
  bool slurm_started_ = false;
  std::vector<std::string> jobs_;
  std::unique_ptr<Process> coordinator_;
  int port_ = 0;
  std::string db_, worker_token_, user_token_file_;
  std::unique_ptr<cli::Remote> remote_;
};

TEST_F(SlurmTest, SbatchWorkers_ScancelAndRequeueMidway_EveryJobDoneOnce) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  std::ostringstream out, err;
  std::istringstream in;
  cli::Io io{in, out, err};
  auto submitted = cli::Submit(*remote_, testing::TestSweep("slurm", kJobs, kSamples), io);
  ASSERT_THAT(submitted, IsOk());
  const int64_t sweep = submitted->sweep_id();

  // Two workers in one allocation (srun, one task each), and a two-task job array.
  const std::string plain = Submit("sf-workers.sbatch", "--ntasks=2");
  const std::string array = Submit("sf-workers-array.sbatch", "--array=0-1");
  ASSERT_FALSE(plain.empty());
  ASSERT_FALSE(array.empty());

  // Every worker registers with its Slurm job id and node.
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  const std::set<std::string> expected_jobs = {plain, array + "_0", array + "_1"};
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  std::map<std::string, v1::WorkerInfo> workers;
  while (workers.size() < 4 && absl::Now() < deadline) {
    const v1::ListWorkersResponse listed = Workers();
    for (const v1::WorkerInfo& w : listed.workers()) workers[w.worker_id()] = w;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(workers.size(), 4u) << "not every worker registered; see " << dir_;
  for (const auto& [id, w] : workers) {
    EXPECT_TRUE(expected_jobs.contains(w.slurm_job_id())) << id << ": " << w.slurm_job_id();
    EXPECT_EQ(w.slurm_node(), host) << id;
    EXPECT_TRUE(absl::StartsWith(id, absl::StrCat("slurm-", w.slurm_job_id(), "-"))) << id;
  }
  // `sfctl workers` (the real binary) shows each worker's Slurm job id and node.
  std::string listed;
  ASSERT_EQ(Shell(absl::StrCat(SF_SFCTL_BIN, " workers --format csv --coordinator 127.0.0.1:",
                               port_, " --token-file ", user_token_file_),
                  &listed),
            0)
      << listed;
  const std::vector<std::string> lines = absl::StrSplit(listed, '\n');
  EXPECT_TRUE(absl::StartsWith(lines[0], "worker,")) << listed;
  EXPECT_TRUE(absl::EndsWith(lines[0], ",slurm_job,slurm_node")) << listed;
  for (const auto& [id, w] : workers) {
    bool row_found = false;
    for (const std::string& line : lines) {
      if (!absl::StartsWith(line, id + ",")) continue;
      row_found = true;
      EXPECT_TRUE(absl::EndsWith(line, absl::StrCat(",", w.slurm_job_id(), ",", host))) << line;
    }
    EXPECT_TRUE(row_found) << id << " not in sfctl workers:\n" << listed;
  }

  // Cancel the two-worker allocation while it holds a lease: Slurm sends SIGTERM, the
  // workers release their jobs as preemptions and exit.
  ASSERT_TRUE(AwaitLeaseHeldBy(plain)) << "no worker of job " << plain << " leased a job";
  ASSERT_EQ(Shell("scancel " + plain), 0);
  // Requeue one array task while it holds a lease; Slurm delays a requeued job by two
  // minutes, so start it now. It comes back under the same id and its worker recovers
  // its outbox.
  const std::string task = array + "_1";
  ASSERT_TRUE(AwaitLeaseHeldBy(task)) << "no worker of job " << task << " leased a job";
  ASSERT_EQ(Shell("scontrol requeue " + task), 0);
  deadline = absl::Now() + absl::Seconds(30);
  while (JobState(task) != "PENDING" && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(JobState(task), "PENDING") << "requeued job " << task;
  ASSERT_EQ(Shell(absl::StrCat("scontrol update JobId=", task, " StartTime=now")), 0);

  const v1::Sweep done = WaitFinished(sweep);
  EXPECT_EQ(done.counts().done(), kJobs);
  EXPECT_EQ(done.counts().failed(), 0);
  EXPECT_GE(done.counts().preemptions(), 2);  // the cancelled workers' and the requeued task's
  std::string restarts;
  Shell(absl::StrCat("scontrol show job ", task, " | grep -o 'Restarts=[0-9]*'"), &restarts);
  EXPECT_EQ(restarts, "Restarts=1");
  const auto [attempts, preemptions] = AttemptsAndPreemptions();
  EXPECT_EQ(attempts, 0) << "a released lease was counted as a failed attempt";
  EXPECT_EQ(preemptions, done.counts().preemptions());

  const testing::DbContents db = ReadDb(db_);
  EXPECT_EQ(db.sample_rows, int64_t{kJobs} * kSamples);
  EXPECT_EQ(db.result_rows, kJobs);
  for (int j = 0; j < kJobs; ++j) {
    const std::string key = TestKey(j);
    ASSERT_TRUE(db.samples.contains(key)) << key;
    EXPECT_EQ(db.samples.at(key).size(), static_cast<size_t>(kSamples)) << key;
    for (const auto& [index, score] : db.samples.at(key)) {
      EXPECT_EQ(score, TestScore(key, index)) << key << " #" << index;
    }
  }
}

}  // namespace
}  // namespace sf
