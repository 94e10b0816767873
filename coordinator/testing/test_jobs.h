// Test helpers for the coordinator: jobs with chosen model/cost/memory, temp
// database paths and requests, so that tests state only what matters to them.
#ifndef SF_COORDINATOR_TESTING_TEST_JOBS_H_
#define SF_COORDINATOR_TESTING_TEST_JOBS_H_

#include <atomic>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/testing/temp_dir.h"
#include "sf/v1/coordinator.pb.h"
#include "sf/v1/worker.pb.h"

namespace sf::coordinator::testing {

struct JobOptions {
  std::string model = "m7b";
  double cost = 1;
  int64_t memory_bytes = 1 << 20;
  int samples = 4;
  std::string method = "dense";
  int64_t sequence_length = 1024;
  double compression = 0;  // 0 = none
  std::string task = "ruler_niah";
};

inline v1::JobSpec MakeJob(const std::string& key, const JobOptions& o = {}) {
  v1::JobSpec job;
  job.set_key(key);
  job.mutable_model()->set_name(o.model);
  job.mutable_model()->set_identity(absl::StrCat("id-", o.model));
  job.mutable_model()->set_path(absl::StrCat("/models/", o.model));
  job.set_sequence_length(o.sequence_length);
  job.mutable_prefill()->set_name(o.method);
  if (o.compression > 0) job.mutable_prefill()->set_compression(o.compression);
  job.mutable_decode()->set_name("dense");
  job.mutable_task()->set_name(o.task);
  job.mutable_task()->set_samples(o.samples);
  job.set_memory_bytes(o.memory_bytes);
  job.set_cost(o.cost);
  return job;
}

// A unique database path in a fresh folder of the running test; the folder is
// removed with it.
class TempDb {
 public:
  TempDb() {
    static std::atomic<int> counter{0};
    dir_ = sf::testing::FreshTestDir(absl::StrCat("db", counter++));
    path_ = (dir_ / "coordinator.db").string();
  }
  ~TempDb() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::filesystem::path dir_;
  std::string path_;
};

inline v1::RegisterWorkerRequest MakeWorker(const std::string& id, int64_t memory = 80LL << 30,
                                            int devices = 1) {
  v1::RegisterWorkerRequest r;
  r.set_worker_id(id);
  r.set_hostname("host");
  for (int i = 0; i < devices; ++i) {
    v1::Device* d = r.add_devices();
    d->set_index(i);
    d->set_name("H200");
    d->set_memory_bytes(memory);
  }
  r.add_backends("test");
  return r;
}

inline v1::SampleResult MakeSample(int index, double score = 1.0) {
  v1::SampleResult s;
  s.set_index(index);
  s.set_score(score);
  s.set_prediction("p");
  s.set_target("t");
  return s;
}

}  // namespace sf::coordinator::testing

#endif  // SF_COORDINATOR_TESTING_TEST_JOBS_H_
