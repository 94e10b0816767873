// The sweep loader and `sfctl analyze` on databases built in process by the real
// scheduler (submit, lease, samples, complete), as sf-coordinator would write them.
#include "cli/analyze_loader.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "analysis/report.h"
#include "cli/analyze.h"
#include "cli/testing/run_commands.h"
#include "common/clock.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "coordinator/scheduler.h"
#include "coordinator/sqlite.h"
#include "coordinator/testing/test_jobs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "worker/model/tiny_model.h"

namespace sf::cli {
namespace {

// Only the command under test is registered (and linked).
CliResult RunCli(std::vector<std::string> args, const std::string& stdin_text = "") {
  return RunCommands({AddAnalyzeCommand}, std::move(args), stdin_text);
}

namespace fs = std::filesystem;
using ::sf::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::SizeIs;

// One job of the test sweep and what its worker reports.
struct TestJob {
  std::string key;
  std::string model = "m-small";
  std::string prefill = "dense";
  double prefill_c = 0;
  std::string decode = "dense";
  double decode_c = 0;
  std::string task = "ruler_niah";
  int64_t num_queries = 0;  // > 0: the task's num_queries parameter
  int64_t seq_len = 1024;
  std::vector<double> scores = {1, 1, 0, 1};
  bool finish = true;        // complete it (else it stays queued)
  bool record_shape = true;  // the worker sends its model's architecture
  bool random_weights = false;
  std::string model_path;  // "" = /models/<model>
  double measured = 0;     // > 0: the result's measured compression (else 0.9 x prefill_c)
};

v1::ModelShape Shape(const std::string& model, bool random) {
  v1::ModelShape m;
  const bool big = model == "m-large";
  m.set_hidden(big ? 128 : 64);
  m.set_layers(big ? 4 : 2);
  m.set_heads(4);
  m.set_kv_heads(2);
  m.set_head_dim(big ? 32 : 16);
  m.set_intermediate(big ? 256 : 128);
  m.set_vocab(1000);
  m.set_qkv_bias(true);
  m.set_tied_embeddings(false);
  m.set_params(big ? 500000 : 200000);
  m.set_random_weights(random);
  return m;
}

// Builds the database at `path` through the scheduler: one sweep named `name` holding
// `jobs`; finished ones get their samples (output tokens 8 + index) and a result whose
// FLOPs are 1000 per evaluated sample for prefill, 10 for decode, 1 for indexing.
void BuildSweep(const std::string& path, const std::string& name,
                const std::vector<TestJob>& jobs) {
  FakeClock clock;
  SF_ASSERT_OK_AND_ASSIGN(auto scheduler, coordinator::Scheduler::Open(path, &clock));
  v1::SubmitSweepRequest submit;
  submit.set_sweep_name(name);
  std::map<std::string, const TestJob*> by_key;
  for (const TestJob& j : jobs) {
    v1::JobSpec spec = coordinator::testing::MakeJob(j.key);
    spec.mutable_model()->set_name(j.model);
    spec.mutable_model()->set_identity(absl::StrCat("id-", j.model));
    spec.mutable_model()->set_path(j.model_path.empty() ? absl::StrCat("/models/", j.model)
                                                        : j.model_path);
    spec.set_sequence_length(j.seq_len);
    spec.mutable_prefill()->set_name(j.prefill);
    if (j.prefill_c > 0) spec.mutable_prefill()->set_compression(j.prefill_c);
    spec.mutable_decode()->set_name(j.decode);
    if (j.decode_c > 0) spec.mutable_decode()->set_compression(j.decode_c);
    spec.mutable_task()->set_name(j.task);
    if (j.num_queries > 0) {
      (*spec.mutable_task()->mutable_params())["num_queries"].set_int_value(j.num_queries);
    }
    spec.mutable_task()->set_samples(static_cast<int>(j.scores.size()));
    spec.set_cost(j.finish ? 10 : 0.5);  // unfinished jobs are leased last
    *submit.add_jobs() = spec;
    by_key[j.key] = &j;
  }
  SF_ASSERT_OK(scheduler->SubmitSweep(submit).status());
  SF_ASSERT_OK(scheduler->RegisterWorker(coordinator::testing::MakeWorker("w")).status());
  const auto to_finish =
      std::count_if(jobs.begin(), jobs.end(), [](const TestJob& j) { return j.finish; });
  for (int64_t done = 0; done < to_finish; ++done) {
    v1::LeaseRequest lease_request;
    lease_request.set_worker_id("w");
    SF_ASSERT_OK_AND_ASSIGN(v1::LeaseResponse lease, scheduler->Lease(lease_request));
    ASSERT_TRUE(lease.has_lease());
    const TestJob& j = *by_key.at(lease.lease().job().key());
    ASSERT_TRUE(j.finish) << j.key << " leased before a job to finish";
    v1::ReportSamplesRequest samples;
    samples.set_lease_token(lease.lease().lease_token());
    for (size_t i = 0; i < j.scores.size(); ++i) {
      v1::SampleResult s = coordinator::testing::MakeSample(static_cast<int>(i), j.scores[i]);
      s.set_input_tokens(j.seq_len);
      s.set_output_tokens(8 + static_cast<int64_t>(i));
      *samples.add_samples() = s;
    }
    SF_ASSERT_OK(scheduler->ReportSamples(samples).status());
    v1::CompleteRequest complete;
    complete.set_lease_token(lease.lease().lease_token());
    v1::JobResult* r = complete.mutable_result();
    const auto n = static_cast<double>(j.scores.size());
    r->set_metric("accuracy");
    r->set_n(static_cast<int64_t>(n));
    r->set_samples_evaluated(static_cast<int64_t>(n));
    r->set_nominal_compression(1);
    r->set_measured_compression(j.measured > 0    ? j.measured
                                : j.prefill_c > 0 ? j.prefill_c * 0.9
                                                  : 1);
    r->set_flops_prefill(1000 * n);
    r->set_flops_decode(10 * n);
    r->set_flops_indexing(1 * n);
    if (j.record_shape) *r->mutable_model_shape() = Shape(j.model, j.random_weights);
    SF_ASSERT_OK(scheduler->Complete(complete).status());
  }
}

// A small sweep: 2 models x 2 lengths x {dense, vertical_slash 2/4 (prefill), quest 2
// (decode)} on one task, plus one both-sparse job and one job left queued.
std::vector<TestJob> SmallSweep() {
  std::vector<TestJob> jobs;
  int k = 0;
  for (const std::string model : {"m-small", "m-large"}) {
    for (int64_t len : {1024, 2048}) {
      auto add = [&](TestJob j) {
        j.key = absl::StrCat("k", k++);
        j.model = model;
        j.seq_len = len;
        jobs.push_back(j);
      };
      add({});
      add({.prefill = "vertical_slash", .prefill_c = 2, .scores = {1, 1, 0, 0}});
      add({.prefill = "vertical_slash", .prefill_c = 4, .scores = {0, 1, 0, 0}});
      add({.decode = "quest", .decode_c = 2, .scores = {1, 0, 0, 1}});
    }
  }
  jobs.push_back({.key = "kboth",
                  .prefill = "vertical_slash",
                  .prefill_c = 2,
                  .decode = "quest",
                  .decode_c = 2});
  jobs.push_back({.key = "kqueued", .decode = "quest", .decode_c = 4, .finish = false});
  return jobs;
}

class AnalyzeLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = sf::testing::FreshTestDir();
    db_ = (dir_ / "results.db").string();
  }
  absl::StatusOr<LoadedSweep> Load(const std::string& sweep) {
    SF_ASSIGN_OR_RETURN(std::unique_ptr<ResultsSource> source, DatabaseSource(db_));
    return LoadSweep(*source, sweep);
  }
  fs::path dir_;
  std::string db_;
};

TEST_F(AnalyzeLoaderTest, PartialSweep_FillsPointsAndKeepsUnfinishedAsMissing) {
  BuildSweep(db_, "small", SmallSweep());
  SF_ASSERT_OK_AND_ASSIGN(LoadedSweep sweep, Load("small"));
  EXPECT_EQ(sweep.sweep_name, "small");
  EXPECT_EQ(sweep.jobs_total, 18);
  EXPECT_EQ(sweep.jobs_done, 17);
  // 16 grid jobs + the queued one; the both-sparse job is left out with a warning.
  ASSERT_THAT(sweep.input.points, SizeIs(17));
  EXPECT_THAT(sweep.warnings,
              ::testing::Contains(AllOf(HasSubstr("kboth"), HasSubstr("both phases are sparse"))));
  int dense = 0, prefill = 0, decode = 0, empty = 0;
  for (const analysis::ResultPoint& p : sweep.input.points) {
    if (p.samples.empty()) {
      ++empty;
      EXPECT_EQ(p.method, "quest");
      EXPECT_EQ(p.phase, "decode");
      EXPECT_EQ(p.nominal_compression, 4);
      continue;
    }
    ASSERT_THAT(p.samples, SizeIs(4));
    for (size_t i = 0; i < p.samples.size(); ++i) EXPECT_EQ(p.samples[i].index, int64_t(i));
    // FLOPs per sample (the worker records sums over its 4 samples).
    EXPECT_DOUBLE_EQ(p.flops_prefill, 1000);
    EXPECT_DOUBLE_EQ(p.flops_decode, 10);
    EXPECT_DOUBLE_EQ(p.flops_indexing, 1);
    EXPECT_EQ(p.decode_tokens, 10);  // mean of 8, 9, 10, 11 = 9.5, rounded
    EXPECT_EQ(p.shape.hidden_size, p.model == "m-large" ? 128 : 64);
    EXPECT_EQ(p.shape.num_layers, p.model == "m-large" ? 4 : 2);
    EXPECT_TRUE(p.shape.qkv_bias);
    EXPECT_EQ(p.params, p.model == "m-large" ? 500000 : 200000);
    if (p.is_dense()) {
      ++dense;
      EXPECT_EQ(p.nominal_compression, 1);
    } else if (p.phase == "prefill") {
      ++prefill;
      EXPECT_EQ(p.method, "vertical_slash");
      EXPECT_DOUBLE_EQ(p.measured_compression, p.nominal_compression * 0.9);
    } else {
      ++decode;
      EXPECT_EQ(p.method, "quest");
      EXPECT_EQ(p.phase, "decode");
      EXPECT_EQ(p.nominal_compression, 2);
    }
  }
  EXPECT_EQ(dense, 4);
  EXPECT_EQ(prefill, 8);
  EXPECT_EQ(decode, 4);
  EXPECT_EQ(empty, 1);
  EXPECT_TRUE(sweep.input.caveat.empty());

  // The analysis lists the queued job's cell (and its siblings) as missing, not zero.
  SF_ASSERT_OK_AND_ASSIGN(analysis::AnalysisResults results,
                          analysis::Analyze(sweep.input, analysis::ReportOptions()));
  EXPECT_THAT(results.missing, SizeIs(4));  // quest 4 is missing in every (model, L)
  for (const auto& m : results.missing) {
    EXPECT_EQ(m.method, "quest");
    EXPECT_EQ(m.phase, "decode");
    EXPECT_EQ(m.compression, 4);
  }
}

// flexprefill's gamma and xattention's threshold set no nominal compression (the worker
// records 1): each setting is its own point at its measured compression, not one average.
TEST_F(AnalyzeLoaderTest, AdaptiveBudget_PlacedAtItsMeasuredCompression) {
  std::vector<TestJob> jobs = {
      {.key = "d"},
      {.key = "f1", .prefill = "flexprefill", .scores = {1, 1, 1, 1}, .measured = 2.9432},
      {.key = "f2", .prefill = "flexprefill", .scores = {1, 1, 0, 1}, .measured = 4.3051},
      {.key = "v", .prefill = "vertical_slash", .prefill_c = 2},
  };
  BuildSweep(db_, "adaptive", jobs);
  SF_ASSERT_OK_AND_ASSIGN(LoadedSweep sweep, Load("adaptive"));
  std::vector<double> flex;
  for (const analysis::ResultPoint& p : sweep.input.points) {
    if (p.method == "flexprefill") {
      flex.push_back(p.nominal_compression);
      EXPECT_DOUBLE_EQ(p.nominal_compression, std::round(p.measured_compression * 100) / 100);
    } else if (p.method == "vertical_slash") {
      EXPECT_EQ(p.nominal_compression, 2);  // the spec's, not the measured 1.8
    }
  }
  std::sort(flex.begin(), flex.end());
  EXPECT_THAT(flex, ::testing::ElementsAre(2.94, 4.31));
  SF_ASSERT_OK_AND_ASSIGN(analysis::AnalysisResults results,
                          analysis::Analyze(sweep.input, analysis::ReportOptions()));
  int tested = 0;
  for (const analysis::PreservedCompression& pc : results.preserved) {
    if (pc.method != "flexprefill") continue;
    ++tested;
    ASSERT_THAT(pc.tests, SizeIs(2));
    EXPECT_EQ(pc.tests[0].compression, 2.94);
    EXPECT_EQ(pc.tests[1].compression, 4.31);
  }
  EXPECT_EQ(tested, 1);
  EXPECT_THAT(results.missing, ::testing::IsEmpty());
}

TEST_F(AnalyzeLoaderTest, TaskWithTwoParameterSets_EachIsItsOwnTask) {
  std::vector<TestJob> jobs;
  for (int64_t keys : {1, 4}) {
    jobs.push_back({.key = absl::StrCat("d", keys), .num_queries = keys});
    jobs.push_back({.key = absl::StrCat("v", keys),
                    .prefill = "vertical_slash",
                    .prefill_c = 2,
                    .num_queries = keys,
                    .scores = {0, 1, 0, 0}});
  }
  jobs.push_back({.key = "vt", .task = "ruler_vt"});
  BuildSweep(db_, "variants", jobs);
  SF_ASSERT_OK_AND_ASSIGN(LoadedSweep sweep, Load("variants"));
  std::map<std::string, int> per_task;
  for (const analysis::ResultPoint& p : sweep.input.points) ++per_task[p.task];
  EXPECT_EQ(per_task, (std::map<std::string, int>{{"ruler_niah(num_queries=1)", 2},
                                                  {"ruler_niah(num_queries=4)", 2},
                                                  {"ruler_vt", 1}}));
  // Each variant's sparse point is tested against its own dense point: 4 pairs each.
  SF_ASSERT_OK_AND_ASSIGN(analysis::AnalysisResults results,
                          analysis::Analyze(sweep.input, analysis::ReportOptions()));
  std::vector<std::string> tested;
  for (const analysis::PreservedCompression& pc : results.preserved) {
    tested.push_back(pc.task);
    ASSERT_THAT(pc.tests, SizeIs(1));
    EXPECT_EQ(pc.tests[0].n_pairs, 4);
  }
  EXPECT_THAT(tested, ::testing::UnorderedElementsAre("ruler_niah(num_queries=1)",
                                                      "ruler_niah(num_queries=4)"));
}

TEST_F(AnalyzeLoaderTest, ById_SameAsByName) {
  BuildSweep(db_, "small", SmallSweep());
  SF_ASSERT_OK_AND_ASSIGN(LoadedSweep by_id, Load("1"));
  EXPECT_EQ(by_id.sweep_name, "small");
  EXPECT_THAT(by_id.input.points, SizeIs(17));
}

TEST_F(AnalyzeLoaderTest, RandomWeights_CaveatNamesTheModel) {
  std::vector<TestJob> jobs = SmallSweep();
  for (TestJob& j : jobs) j.random_weights = j.model == "m-small";
  BuildSweep(db_, "small", jobs);
  SF_ASSERT_OK_AND_ASSIGN(LoadedSweep sweep, Load("small"));
  EXPECT_THAT(sweep.random_weight_models, ::testing::ElementsAre("m-small"));
  EXPECT_THAT(sweep.input.caveat, AllOf(HasSubstr("m-small"), HasSubstr("random weights"),
                                        HasSubstr("carry no meaning")));
}

TEST_F(AnalyzeLoaderTest, UnknownSweep_NotFoundListsExisting) {
  BuildSweep(db_, "small", SmallSweep());
  EXPECT_THAT(Load("nope"), StatusIs(absl::StatusCode::kNotFound,
                                     AllOf(HasSubstr("no sweep 'nope'"), HasSubstr("1 'small'"))));
  EXPECT_THAT(Load("7"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("'small'")));
  // A name with a quote is data, not SQL.
  EXPECT_THAT(Load("x' OR '1'='1"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("no sweep")));
}

TEST_F(AnalyzeLoaderTest, NoFinishedJobs_FailedPrecondition) {
  BuildSweep(db_, "idle", {{.key = "k0", .finish = false}});
  EXPECT_THAT(Load("idle"), StatusIs(absl::StatusCode::kFailedPrecondition,
                                     AllOf(HasSubstr("no finished jobs"), HasSubstr("1 queued"))));
}

TEST_F(AnalyzeLoaderTest, MissingDatabase_NotFoundSaysWhatToPass) {
  EXPECT_THAT(DatabaseSource((dir_ / "absent.db").string()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("--db")));
}

TEST_F(AnalyzeLoaderTest, ShapeNotRecorded_ReadFromConfigJson) {
  const fs::path model_dir = dir_ / "tiny";
  fs::create_directories(model_dir);
  model::TinyModelOptions tiny;
  tiny.architecture = model::Architecture::kQwen2;
  std::ofstream(model_dir / "config.json") << model::TinyModelConfigJson(tiny);
  std::vector<TestJob> jobs = {
      {.key = "a", .record_shape = false, .model_path = model_dir.string()},
      {.key = "b",
       .prefill = "vertical_slash",
       .prefill_c = 2,
       .record_shape = false,
       .model_path = model_dir.string()}};
  for (TestJob& j : jobs) j.model = "tiny";
  BuildSweep(db_, "old", jobs);
  SF_ASSERT_OK_AND_ASSIGN(LoadedSweep sweep, Load("old"));
  ASSERT_THAT(sweep.input.points, SizeIs(2));
  EXPECT_EQ(sweep.input.points[0].shape.hidden_size, tiny.hidden_size);
  EXPECT_EQ(sweep.input.points[0].shape.num_layers, tiny.num_layers);
  EXPECT_TRUE(sweep.input.points[0].shape.qkv_bias);  // Qwen2
  EXPECT_THAT(sweep.warnings, ::testing::Contains(HasSubstr("config.json")));
  // make-tiny-model marks its config: the caveat comes from config.json too.
  EXPECT_THAT(sweep.input.caveat, HasSubstr("random weights"));
}

// A database written before schema migration 2 has no model_* columns at all.
TEST_F(AnalyzeLoaderTest, SchemaOneDatabase_ReadsConfigJson) {
  const fs::path model_dir = dir_ / "tiny";
  fs::create_directories(model_dir);
  std::ofstream(model_dir / "config.json") << model::TinyModelConfigJson({});
  BuildSweep(
      db_, "old",
      {{.key = "a", .model_path = model_dir.string()},
       {.key = "b", .prefill = "streaming", .prefill_c = 2, .model_path = model_dir.string()}});
  {
    SF_ASSERT_OK_AND_ASSIGN(auto db, coordinator::Database::OpenWriter(db_));
    for (const char* column :
         {"samples_evaluated", "model_hidden", "model_layers", "model_heads", "model_kv_heads",
          "model_head_dim", "model_intermediate", "model_vocab", "model_qkv_bias",
          "model_tied_embeddings", "model_params", "model_random_weights"}) {
      SF_ASSERT_OK(db->Exec(absl::StrCat("ALTER TABLE results DROP COLUMN ", column)));
    }
    SF_ASSERT_OK(db->Exec("DELETE FROM schema_version WHERE version >= 2"));
  }
  SF_ASSERT_OK_AND_ASSIGN(LoadedSweep sweep, Load("old"));
  ASSERT_THAT(sweep.input.points, SizeIs(2));
  EXPECT_EQ(sweep.input.points[1].shape.hidden_size, model::TinyModelOptions().hidden_size);
  EXPECT_THAT(sweep.warnings, ::testing::Contains(HasSubstr("config.json")));
  // Without samples_evaluated the FLOPs are divided by n (4 samples, no resume here).
  EXPECT_DOUBLE_EQ(sweep.input.points[1].flops_prefill, 1000);
}

TEST_F(AnalyzeLoaderTest, ShapeNotRecordedAndNoConfig_ClearError) {
  BuildSweep(db_, "old", {{.key = "a", .record_shape = false, .model_path = "/nonexistent/m"}});
  EXPECT_THAT(Load("old"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("m-small"), HasSubstr("no recorded architecture"),
                             HasSubstr("/nonexistent/m"))));
}

TEST_F(AnalyzeLoaderTest, Cli_NoPlots_WritesReportAndPrintsSummary) {
  BuildSweep(db_, "small", SmallSweep());
  const fs::path out = dir_ / "report";
  CliResult r = RunCli({"analyze", "--db", db_, "--sweep", "small", "--no-plots", "--out",
                        out.string(), "--test", "wilcoxon", "--alpha", "0.1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out,
              AllOf(HasSubstr("sweep 1 'small': 17 of 18 jobs done"), HasSubstr("Wilcoxon"),
                    HasSubstr("kboth"), HasSubstr("report: " + (out / "index.html").string())));
  EXPECT_TRUE(fs::exists(out / "index.html"));
  EXPECT_TRUE(fs::exists(out / "points.csv"));
  EXPECT_FALSE(fs::exists(out / "preserved_prefill.png"));
}

TEST_F(AnalyzeLoaderTest, Cli_DefaultOutBesideDatabase_WithPlots) {
  BuildSweep(db_, "small", SmallSweep());
  CliResult r = RunCli({"analyze", "--db", db_, "--sweep", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  const fs::path out = dir_ / "results-report" / "sweep-1";
  EXPECT_THAT(r.out, HasSubstr((out / "index.html").string()));
  EXPECT_TRUE(fs::exists(out / "preserved_prefill.png"));
  EXPECT_TRUE(fs::exists(out / "isoflops_decode_ruler_niah.png"));
}

TEST_F(AnalyzeLoaderTest, Cli_Json_ParsesAndCarriesCaveat) {
  std::vector<TestJob> jobs = SmallSweep();
  for (TestJob& j : jobs) j.random_weights = true;
  BuildSweep(db_, "small", jobs);
  CliResult r = RunCli({"analyze", "--db", db_, "--sweep", "small", "--no-plots", "--json", "--out",
                        (dir_ / "j").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["sweep_id"], 1);
  EXPECT_EQ(j["points"], 17);
  EXPECT_THAT(j["caveat"].get<std::string>(), HasSubstr("random weights"));
  EXPECT_EQ(j["missing"].size(), 4u);
  EXPECT_FALSE(j["preserved"].empty());
}

// sfctl run's analysis: without gnuplot the report has tables only and the run goes on.
TEST_F(AnalyzeLoaderTest, PlotsOptional_NoGnuplot_TablesAndANote) {
  BuildSweep(db_, "small", SmallSweep());
  SF_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ResultsSource> source, DatabaseSource(db_));
  AnalyzeOptions options;
  options.gnuplot = "/nonexistent/gnuplot";
  options.plots_optional = true;
  options.out_dir = (dir_ / "r").string();
  std::istringstream in;
  std::ostringstream out, err;
  Io io{in, out, err};
  EXPECT_EQ(AnalyzeSweep(*source, "small", db_, options, io), kExitOk) << err.str();
  EXPECT_THAT(out.str(),
              AllOf(HasSubstr("no figures"), HasSubstr("gnuplot-nox"), HasSubstr("report: ")));
  EXPECT_TRUE(fs::exists(dir_ / "r" / "index.html"));
  EXPECT_FALSE(fs::exists(dir_ / "r" / "preserved_prefill.png"));
}

TEST_F(AnalyzeLoaderTest, Cli_Errors_UnknownSweepNoGnuplotBadTest) {
  BuildSweep(db_, "small", SmallSweep());
  CliResult unknown = RunCli({"analyze", "--db", db_, "--sweep", "other", "--no-plots"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_THAT(unknown.err, AllOf(HasSubstr("no sweep 'other'"), HasSubstr("1 'small'")));
  CliResult no_gnuplot = RunCli({"analyze", "--db", db_, "--sweep", "small", "--gnuplot",
                                 "/nonexistent/gnuplot", "--out", (dir_ / "g").string()});
  EXPECT_EQ(no_gnuplot.code, 2);
  EXPECT_THAT(no_gnuplot.err, AllOf(HasSubstr("gnuplot-nox"), HasSubstr("--no-plots")));
  CliResult bad_test = RunCli({"analyze", "--db", db_, "--sweep", "small", "--test", "z"});
  EXPECT_EQ(bad_test.code, 2);
  EXPECT_THAT(bad_test.err, HasSubstr("wilcoxon"));
  CliResult no_db = RunCli({"analyze", "--db", (dir_ / "none.db").string(), "--sweep", "1"});
  EXPECT_EQ(no_db.code, 2);
}

}  // namespace
}  // namespace sf::cli
