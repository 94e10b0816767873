// The sf-worker process around the loop: where Slurm placed it, and the --health check
// mode against a coordinator served over loopback.
#include "worker/worker_main.h"

#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/testing/status_matchers.h"
#include "coordinator/scheduler.h"
#include "coordinator/service.h"
#include "coordinator/testing/test_jobs.h"
#include "gtest/gtest.h"
#include "worker/testing/test_evaluator.h"

namespace sf::worker {
namespace {

using ::sf::testing::IsOk;

std::function<const char*(const char*)> Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(SlurmPlacementTest, OutsideSlurm_Empty) {
  const SlurmPlacement p = SlurmPlacementFromEnvironment(Env({}));
  EXPECT_EQ(p.job_id, "");
  EXPECT_EQ(p.node, "");
}

TEST(SlurmPlacementTest, PlainJob_JobIdAndNode) {
  const SlurmPlacement p =
      SlurmPlacementFromEnvironment(Env({{"SLURM_JOB_ID", "812"}, {"SLURMD_NODENAME", "gpu3"}}));
  EXPECT_EQ(p.job_id, "812");
  EXPECT_EQ(p.node, "gpu3");
}

TEST(SlurmPlacementTest, ArrayTask_ArrayJobUnderscoreTask) {
  const SlurmPlacement p = SlurmPlacementFromEnvironment(Env({{"SLURM_JOB_ID", "815"},
                                                              {"SLURM_ARRAY_JOB_ID", "812"},
                                                              {"SLURM_ARRAY_TASK_ID", "3"},
                                                              {"SLURMD_NODENAME", "gpu3"}}));
  EXPECT_EQ(p.job_id, "812_3");
}

int RunWorkerMain(std::vector<std::string> args) {
  args.insert(args.begin(), "sf-worker");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  WorkerMainHooks hooks;
  hooks.make_evaluator = [](const std::vector<std::string>&) {
    return std::make_unique<testing::TestEvaluator>();
  };
  return WorkerMain(static_cast<int>(argv.size()), argv.data(), hooks);
}

TEST(WorkerMainHealthTest, CoordinatorServing_ExitsZero) {
  coordinator::testing::TempDb db;
  auto scheduler = coordinator::Scheduler::Open(db.path(), &RealClock());
  ASSERT_THAT(scheduler.status(), IsOk());
  auto server = coordinator::CoordinatorServer::Start(scheduler->get(), {});
  ASSERT_THAT(server.status(), IsOk());
  EXPECT_EQ(
      RunWorkerMain({"--health", "--coordinator", absl::StrCat("127.0.0.1:", (*server)->port())}),
      0);
}

TEST(WorkerMainHealthTest, NothingListening_ExitsOne) {
  // Port 1 on loopback: nothing listens there, so the connection is refused at once.
  EXPECT_EQ(RunWorkerMain({"--health", "--coordinator", "127.0.0.1:1", "--health-timeout", "1"}),
            1);
}

}  // namespace
}  // namespace sf::worker
