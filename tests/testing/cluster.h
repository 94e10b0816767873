// Test scaffolding for cross-component tests: a coordinator served in process over
// loopback gRPC, local workers with the deterministic TestEvaluator, and read-back of
// the coordinator database to check that every sample arrived exactly once.
#ifndef SF_TESTS_TESTING_CLUSTER_H_
#define SF_TESTS_TESTING_CLUSTER_H_

#include <sqlite3.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/clock.h"
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

// What the coordinator database holds, read with a separate read-only connection.
struct DbContents {
  // job key -> sample index -> score
  std::map<std::string, std::map<int, double>> samples;
  int64_t sample_rows = 0;
  std::map<std::string, int64_t> result_n;  // job key -> results.n
  int64_t result_rows = 0;
};

inline DbContents ReadDb(const std::string& path) {
  DbContents c;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return c;
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT j.key, s.idx, s.score FROM samples s JOIN jobs j ON j.id = s.job_id",
                     -1, &st, nullptr);
  while (st && sqlite3_step(st) == SQLITE_ROW) {
    c.samples[reinterpret_cast<const char*>(sqlite3_column_text(st, 0))]
             [sqlite3_column_int(st, 1)] = sqlite3_column_double(st, 2);
    ++c.sample_rows;
  }
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db, "SELECT j.key, r.n FROM results r JOIN jobs j ON j.id = r.job_id", -1,
                     &st, nullptr);
  while (st && sqlite3_step(st) == SQLITE_ROW) {
    c.result_n[reinterpret_cast<const char*>(sqlite3_column_text(st, 0))] =
        sqlite3_column_int64(st, 1);
    ++c.result_rows;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return c;
}

}  // namespace sf::testing

#endif  // SF_TESTS_TESTING_CLUSTER_H_
