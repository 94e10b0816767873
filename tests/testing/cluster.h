// Test scaffolding for cross-component tests: a coordinator served in process over
// loopback gRPC, local workers with the deterministic TestEvaluator, and read-back of
// the coordinator database to check that every sample arrived exactly once.
#ifndef SF_TESTS_TESTING_CLUSTER_H_
#define SF_TESTS_TESTING_CLUSTER_H_

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/clock.h"
#include "coordinator/results_reader.h"
#include "sf/v1/coordinator.grpc.pb.h"
#include "sf/v1/worker.grpc.pb.h"

namespace sf::testing {

// A job key the coordinator accepts (hex), distinct per `i`.
inline std::string TestKey(int i) { return absl::StrFormat("%016x", 0xabc000 + i); }

inline v1::JobSpec TestJob(int i, int samples, const std::string& model = "m7b") {
  v1::JobSpec job;
  job.set_key(TestKey(i));
  job.mutable_model()->set_name(model);
  job.mutable_model()->set_identity("id-" + model);
  job.mutable_model()->set_path("/models/" + model);
  job.set_sequence_length(1024);
  job.mutable_prefill()->set_name("dense");
  job.mutable_decode()->set_name("dense");
  job.mutable_task()->set_name("ruler_niah");
  job.mutable_task()->set_samples(samples);
  job.set_memory_bytes(1 << 20);
  job.set_cost(1 + i % 3);
  return job;
}

inline v1::SubmitSweepRequest TestSweep(const std::string& name, int jobs, int samples) {
  v1::SubmitSweepRequest request;
  request.set_sweep_name(name);
  for (int i = 0; i < jobs; ++i) *request.add_jobs() = TestJob(i, samples);
  return request;
}

// What the coordinator database holds, read with a separate read-only connection
// through the coordinator's reader (coordinator/results_reader.h).
struct DbContents {
  // job key -> sample index -> score
  std::map<std::string, std::map<int, double>> samples;
  int64_t sample_rows = 0;
  std::map<std::string, int64_t> result_n;  // job key -> results.n
  int64_t result_rows = 0;
};

inline DbContents ReadDb(const std::string& path) {
  DbContents c;
  auto db = coordinator::DatabaseResults::Open(path);
  if (!db.ok()) return c;
  v1::ResultsRequest request;
  request.set_include_unfinished(true);
  request.set_include_samples(true);
  (void)(*db)->Results(request, [&c](v1::ResultsResponse& page) {
    for (const v1::ResultRow& row : page.rows()) {
      for (const v1::SampleResult& s : row.samples()) {
        c.samples[row.job().key()][s.index()] = s.score();
        ++c.sample_rows;
      }
      if (row.has_result()) {
        c.result_n[row.job().key()] = row.result().n();
        ++c.result_rows;
      }
    }
    return true;
  });
  return c;
}

}  // namespace sf::testing

#endif  // SF_TESTS_TESTING_CLUSTER_H_
