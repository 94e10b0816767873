// Placement by GPU memory: jobs carrying a GPU memory profile (a 72B-shaped model) go only
// to workers whose GPUs can hold their layers, and a job no live worker can hold says so.
#include "coordinator/placement.h"

#include <map>

#include "common/gpu_memory.h"
#include "common/qwen25_shapes.h"
#include "common/testing/status_matchers.h"
#include "coordinator/scheduler.h"
#include "coordinator/testing/test_jobs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/job_convert.h"

namespace sf::coordinator {
namespace {

using ::sf::testing::IsOk;
using ::sf::testing::StatusIs;
using ::testing::HasSubstr;
using testing::MakeJob;
using testing::MakeWorker;
using testing::TempDb;

constexpr int64_t kGiB = int64_t{1} << 30;

// Qwen2.5-72B's shape (config.json of Qwen/Qwen2.5-72B-Instruct), bf16, chunks of 8192.
model::LayerMemoryProfile Qwen72B(int64_t tokens) {
  return model::ProfileGpuMemory(model::Qwen25Shape("qwen2.5-72b", 0).value(), {}, tokens);
}

v1::GpuMemoryProfile Qwen72BProfile(int64_t tokens) {
  return GpuMemoryProfileToProto(Qwen72B(tokens));
}

v1::JobSpec Job72B(const std::string& key, int64_t tokens) {
  v1::JobSpec job = MakeJob(key, {.model = "q72b", .cost = static_cast<double>(tokens)});
  job.mutable_model()->set_gpus(1);
  *job.mutable_gpu_memory() = Qwen72BProfile(tokens);
  job.set_memory_bytes(Qwen72B(tokens).TotalBytes());
  return job;
}

WorkerCaps Gpus(int count, int64_t each) {
  WorkerCaps caps;
  caps.device_count = count;
  caps.max_device_memory = each;
  caps.device_memory.assign(static_cast<size_t>(count), each);
  return caps;
}

TEST(WorkerCanHoldTest, Qwen72B_NeedsEnoughGpusTogether) {
  const v1::GpuMemoryProfile at32k = Qwen72BProfile(32768 + 1024);
  const v1::GpuMemoryProfile at128k = Qwen72BProfile(131072 + 1024);
  // About 148 GiB at 32K and 179 GiB at 128K in bf16.
  EXPECT_THAT(WorkerCanHold(Gpus(1, 141 * kGiB), 1, 0, &at32k),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("cannot be split")));
  EXPECT_THAT(WorkerCanHold(Gpus(2, 80 * kGiB), 1, 0, &at32k), IsOk());
  EXPECT_THAT(WorkerCanHold(Gpus(2, 80 * kGiB), 1, 0, &at128k),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("cannot be split")));
  EXPECT_THAT(WorkerCanHold(Gpus(4, 80 * kGiB), 1, 0, &at128k), IsOk());
  EXPECT_THAT(WorkerCanHold(Gpus(2, 141 * kGiB), 1, 0, &at128k), IsOk());
  // A CPU-only worker takes only jobs that need no GPU.
  EXPECT_THAT(WorkerCanHold(WorkerCaps(), 1, 0, &at32k),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("needs 1 GPU")));
  EXPECT_THAT(WorkerCanHold(WorkerCaps(), 0, 0, &at32k), IsOk());
}

TEST(WorkerCanHoldTest, WithoutProfile_MemoryBytesOverTheJobsGpus) {
  EXPECT_THAT(WorkerCanHold(Gpus(1, 80 * kGiB), 1, 70 * kGiB, nullptr), IsOk());
  EXPECT_THAT(WorkerCanHold(Gpus(1, 80 * kGiB), 1, 90 * kGiB, nullptr),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("largest GPU")));
  EXPECT_THAT(WorkerCanHold(Gpus(2, 80 * kGiB), 2, 150 * kGiB, nullptr), IsOk());
}

class PlacementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Scheduler::Open(db_.path(), &clock_, SchedulerOptions());
    ASSERT_THAT(s.status(), IsOk());
    scheduler_ = std::move(*s);
  }

  int64_t Submit(std::vector<v1::JobSpec> jobs) {
    v1::SubmitSweepRequest r;
    r.set_sweep_name("s");
    for (auto& j : jobs) *r.add_jobs() = j;
    auto resp = scheduler_->SubmitSweep(r);
    EXPECT_THAT(resp.status(), IsOk());
    return resp.ok() ? resp->sweep_id() : 0;
  }

  // A worker with `count` GPUs of `total` bytes each, `free` of them free (-1: not sent).
  absl::Status Register(const std::string& id, int count, int64_t total, int64_t free = -1) {
    v1::RegisterWorkerRequest w = MakeWorker(id, total, count);
    if (free >= 0) {
      for (v1::Device& d : *w.mutable_devices()) d.set_free_memory_bytes(free);
    }
    return scheduler_->RegisterWorker(w).status();
  }

  std::string LeaseFor(const std::string& worker) {
    v1::LeaseRequest r;
    r.set_worker_id(worker);
    auto resp = scheduler_->Lease(r);
    EXPECT_THAT(resp.status(), IsOk());
    return resp.ok() && resp->has_lease() ? resp->lease().job().key() : "";
  }

  // Each job's last_error, by key.
  std::map<std::string, std::string> LastErrors() {
    v1::ResultsRequest r;
    r.set_include_unfinished(true);
    std::map<std::string, std::string> out;
    EXPECT_THAT(scheduler_->Results(r,
                                    [&](v1::ResultsResponse& page) {
                                      for (const auto& row : page.rows()) {
                                        out[row.job().key()] = row.last_error();
                                      }
                                      return true;
                                    }),
                IsOk());
    return out;
  }

  int CountEvents(int64_t sweep, v1::EventKind kind) {
    auto events = scheduler_->ReadEvents(sweep, 0, 1000);
    EXPECT_THAT(events.status(), IsOk());
    int n = 0;
    if (events.ok()) {
      for (const auto& e : *events) n += e.kind() == kind;
    }
    return n;
  }

  FakeClock clock_;
  TempDb db_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(PlacementTest, Qwen72BJobs_GoOnlyToWorkersWhoseGpusHoldThem) {
  Submit({Job72B("q72b-128k", 131072 + 1024), Job72B("q72b-32k", 32768 + 1024),
          MakeJob("small", {.cost = 0.5, .memory_bytes = kGiB})});
  ASSERT_THAT(Register("h200x1", 1, 141 * kGiB), IsOk());
  ASSERT_THAT(Register("h100x2", 2, 80 * kGiB), IsOk());
  ASSERT_THAT(Register("h100x4", 4, 80 * kGiB), IsOk());
  // Longest first: each worker gets the longest job it can hold.
  EXPECT_EQ(LeaseFor("h200x1"), "small");
  EXPECT_EQ(LeaseFor("h200x1"), "");
  EXPECT_EQ(LeaseFor("h100x2"), "q72b-32k");
  EXPECT_EQ(LeaseFor("h100x4"), "q72b-128k");
}

TEST_F(PlacementTest, FreeMemoryReported_PlacesByWhatIsFree) {
  Submit({Job72B("q72b-32k", 32768 + 1024)});
  ASSERT_THAT(Register("busy", 2, 80 * kGiB, 40 * kGiB), IsOk());
  ASSERT_THAT(Register("idle", 2, 80 * kGiB, 79 * kGiB), IsOk());
  EXPECT_EQ(LeaseFor("busy"), "");
  EXPECT_EQ(LeaseFor("idle"), "q72b-32k");
}

TEST_F(PlacementTest, NoWorkerCanHold_LastErrorAndEventSayWhy_ClearedWhenOneRegisters) {
  ASSERT_THAT(Register("h100x1", 1, 80 * kGiB), IsOk());
  ASSERT_THAT(Register("h100x2", 2, 80 * kGiB), IsOk());
  const int64_t sweep = Submit({Job72B("q72b-128k", 131072 + 1024), MakeJob("small")});
  std::map<std::string, std::string> errors = LastErrors();
  EXPECT_THAT(errors["q72b-128k"], HasSubstr("no live registered worker can hold this job"));
  EXPECT_THAT(errors["q72b-128k"], HasSubstr("worker 'h100x2' (2 GPU(s)"));
  EXPECT_THAT(errors["q72b-128k"], HasSubstr("GiB of GPU memory"));
  EXPECT_EQ(errors["small"], "");
  EXPECT_EQ(CountEvents(sweep, v1::EVENT_KIND_JOB_UNPLACEABLE), 1);
  // It stays queued (a larger worker may come) and the others run.
  EXPECT_EQ(LeaseFor("h100x2"), "small");
  EXPECT_EQ(LeaseFor("h100x2"), "");
  // Registering the same worker again does not repeat the event.
  ASSERT_THAT(Register("h100x1", 1, 80 * kGiB), IsOk());
  EXPECT_EQ(CountEvents(sweep, v1::EVENT_KIND_JOB_UNPLACEABLE), 1);
  ASSERT_THAT(Register("h100x4", 4, 80 * kGiB), IsOk());
  EXPECT_EQ(LastErrors()["q72b-128k"], "");
  EXPECT_EQ(LeaseFor("h100x4"), "q72b-128k");
}

TEST_F(PlacementTest, NoWorkerYet_NoMarkUntilOneRegisters) {
  Submit({Job72B("q72b-128k", 131072 + 1024)});
  EXPECT_EQ(LastErrors()["q72b-128k"], "");
  ASSERT_THAT(Register("h200x1", 1, 141 * kGiB), IsOk());
  EXPECT_THAT(LastErrors()["q72b-128k"], HasSubstr("no live registered worker can hold"));
}

TEST_F(PlacementTest, BadDevicesOrProfile_InvalidArgument) {
  v1::RegisterWorkerRequest w = MakeWorker("w", 80 * kGiB, 1);
  w.mutable_devices(0)->set_free_memory_bytes(81 * kGiB);
  EXPECT_THAT(scheduler_->RegisterWorker(w).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("free_memory_bytes")));
  w.mutable_devices(0)->set_free_memory_bytes(-1);
  EXPECT_THAT(scheduler_->RegisterWorker(w).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("device 0")));

  v1::SubmitSweepRequest r;
  r.set_sweep_name("bad");
  v1::JobSpec job = Job72B("q", 1024);
  job.mutable_gpu_memory()->set_layers(0);
  *r.add_jobs() = job;
  EXPECT_THAT(scheduler_->SubmitSweep(r).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("jobs[0]")));
  r.mutable_jobs(0)->mutable_gpu_memory()->set_layers(80);
  r.mutable_jobs(0)->mutable_gpu_memory()->set_per_layer_bytes(-5);
  EXPECT_THAT(scheduler_->SubmitSweep(r).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("per_layer_bytes")));
}

}  // namespace
}  // namespace sf::coordinator
