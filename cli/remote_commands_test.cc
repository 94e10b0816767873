// sfctl's coordinator commands run in process (RunSfctl) against a coordinator served on
// loopback with two local workers using the tests' deterministic evaluator; and `run`
// (RunLocally) with the same evaluator.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/local_run.h"
#include "cli/sfctl.h"
#include "common/testing/model_fixture.h"
#include "common/testing/status_matchers.h"
#include "coordinator/client.h"
#include "coordinator/scheduler.h"
#include "coordinator/service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "worker/outbox.h"
#include "worker/testing/test_evaluator.h"
#include "worker/worker.h"
#include "worker/worker_client.h"

namespace sf::cli {
namespace {

using ::sf::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::Not;

struct Result {
  int code;
  std::string out;
  std::string err;
};

constexpr char kSpec[] = R"(name: cli-demo
models:
  - {name: tiny, path: models/tiny}
sequence_lengths: [512, 1024]
methods:
  - dense
  - {name: streaming, phase: prefill, compression: [2, 4]}
tasks:
  - {name: ruler_niah, samples: 3}
seed: 7
)";

class RemoteCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = sf::testing::FreshTestDir();
    sf::testing::WriteModel(dir_ / "models/tiny");
    spec_ = (dir_ / "sweep.yaml").string();
    // Relative paths in a spec resolve against the current folder (docs/spec.md).
    std::string spec = kSpec;
    spec.replace(spec.find("models/tiny"), 11, (dir_ / "models/tiny").string());
    std::ofstream(spec_) << spec;
  }

  // `tls` set: the coordinator serves (mutual) TLS and the workers connect with `client`.
  void StartCluster(int workers, TlsServerFiles tls = {}, TlsClientFiles client = {}) {
    evaluator_ = std::make_unique<worker::testing::TestEvaluator>(evaluator_options_);
    coordinator::SchedulerOptions options;
    options.max_lease_wait = absl::Milliseconds(300);
    auto scheduler =
        coordinator::Scheduler::Open((dir_ / "coord.db").string(), &RealClock(), options);
    ASSERT_THAT(scheduler, IsOk());
    scheduler_ = std::move(*scheduler);
    coordinator::ServerOptions server_options;
    server_options.tls = std::move(tls);
    auto server = coordinator::CoordinatorServer::Start(scheduler_.get(), server_options);
    ASSERT_THAT(server, IsOk());
    server_ = std::move(*server);
    address_ = absl::StrCat("127.0.0.1:", server_->port());
    ConnectionOptions c;
    c.address = address_;
    auto credentials = MakeChannelCredentials(client);
    ASSERT_THAT(credentials, IsOk());
    c.credentials = *credentials;
    channel_ = MakeCoordinatorChannel(c);
    for (int i = 0; i < workers; ++i) {
      auto& w = workers_.emplace_back(std::make_unique<Local>());
      w->outbox = *worker::Outbox::Open(":memory:");
      w->client = worker::NewGrpcWorkerClient(channel_, {});
      worker::WorkerOptions wo;
      wo.worker_id = absl::StrCat("w", i);
      wo.lease_wait = absl::Milliseconds(300);
      w->worker = std::make_unique<worker::Worker>(wo, w->client.get(), evaluator_.get(),
                                                   w->outbox.get(), &RealClock());
      Local* raw = w.get();
      w->thread = std::thread([raw] { raw->worker->Run().IgnoreError(); });
    }
  }

  void TearDown() override {
    for (auto& w : workers_) w->worker->Stop(worker::StopMode::kRelease);
    for (auto& w : workers_) w->thread.join();
    if (server_) {
      server_->Shutdown(absl::Seconds(1));
      server_->Wait();
    }
  }

  Result Run(std::vector<std::string> args, bool with_address = true) {
    if (with_address) {
      args.push_back("--coordinator");
      args.push_back(address_);
    }
    std::vector<const char*> argv = {"sfctl"};
    for (const auto& a : args) argv.push_back(a.c_str());
    std::istringstream in;
    std::ostringstream out, err;
    const int code = RunSfctl(static_cast<int>(argv.size()), argv.data(), in, out, err);
    return {code, out.str(), err.str()};
  }

  struct Local {
    std::unique_ptr<worker::Outbox> outbox;
    std::unique_ptr<worker::WorkerClient> client;
    std::unique_ptr<worker::Worker> worker;
    std::thread thread;
  };
  std::filesystem::path dir_;
  std::string spec_;
  std::string address_;
  worker::testing::TestEvaluatorOptions evaluator_options_;  // set before StartCluster
  std::unique_ptr<worker::testing::TestEvaluator> evaluator_;
  std::unique_ptr<coordinator::Scheduler> scheduler_;
  std::unique_ptr<coordinator::CoordinatorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::vector<std::unique_ptr<Local>> workers_;
};

std::string TlsFile(const std::string& name) { return std::string(SF_TLS_TEST_DATA "/") + name; }

// Mutual TLS end to end: workers and sfctl present client certificates; sfctl without
// the TLS flags cannot reach the coordinator.
TEST_F(RemoteCommandsTest, MutualTls_SubmitAndWatchWithTlsFlags) {
  const TlsClientFiles client{
      .ca = TlsFile("ca.pem"), .cert = TlsFile("client.pem"), .key = TlsFile("client.key")};
  StartCluster(
      1,
      {.cert = TlsFile("server.pem"), .key = TlsFile("server.key"), .client_ca = TlsFile("ca.pem")},
      client);
  const std::vector<std::string> tls = {"--tls-ca",  client.ca,   "--tls-cert",
                                        client.cert, "--tls-key", client.key};
  auto with_tls = [&](std::vector<std::string> args) {
    args.insert(args.end(), tls.begin(), tls.end());
    return Run(args);
  };
  Result submit = with_tls({"submit", spec_});
  ASSERT_EQ(submit.code, kExitOk) << submit.err;
  Result watch = with_tls({"watch", "cli-demo"});
  EXPECT_EQ(watch.code, kExitOk) << watch.err;
  EXPECT_THAT(watch.out, HasSubstr("done 6/6"));

  Result plaintext = Run({"list", "--timeout", "5"});
  EXPECT_EQ(plaintext.code, kExitUnavailable) << plaintext.out;
  EXPECT_THAT(plaintext.err, HasSubstr("--tls-ca"));
  Result bad_ca = Run({"list", "--tls-ca", TlsFile("missing.pem")});
  EXPECT_EQ(bad_ca.code, kExitUsage) << bad_ca.err;
  EXPECT_THAT(bad_ca.err, HasSubstr("missing.pem"));
}

TEST_F(RemoteCommandsTest, SubmitWatchResultsQueryExport_EndToEnd) {
  StartCluster(2);
  Result submit = Run({"submit", spec_});
  ASSERT_EQ(submit.code, kExitOk) << submit.err;
  EXPECT_THAT(submit.out, HasSubstr("sweep 1 'cli-demo': 6 jobs (6 new, 0 reused)"));

  Result watch = Run({"watch", "cli-demo"});
  EXPECT_EQ(watch.code, kExitOk) << watch.err;
  EXPECT_THAT(watch.out, HasSubstr("done 6/6"));
  EXPECT_THAT(watch.out, HasSubstr("finished"));

  Result again = Run({"submit", spec_});
  EXPECT_THAT(again.out, HasSubstr("(0 new, 6 reused)"));

  Result status = Run({"status", "1"});
  EXPECT_EQ(status.code, kExitOk) << status.err;
  EXPECT_THAT(status.out, HasSubstr("finished"));
  EXPECT_THAT(status.out, HasSubstr("samples        18 / 18"));

  Result list = Run({"list", "--format", "csv"});
  EXPECT_EQ(list.code, kExitOk);
  EXPECT_THAT(list.out, HasSubstr("1,cli-demo,finished"));

  Result table = Run({"results", "--sweep", "cli-demo"});
  EXPECT_EQ(table.code, kExitOk) << table.err;
  EXPECT_THAT(table.out, HasSubstr("streaming"));

  Result filtered =
      Run({"results", "--method", "streaming", "--length", "1024", "--format", "json"});
  ASSERT_EQ(filtered.code, kExitOk) << filtered.err;
  const auto json = nlohmann::json::parse(filtered.out);
  ASSERT_EQ(json.size(), 2u);
  for (const auto& row : json) {
    EXPECT_EQ(row["prefill"], "streaming");
    EXPECT_EQ(row["length"], 1024);
    EXPECT_EQ(row["n"], 3);
  }
  Result by_compression = Run({"results", "--compression", "4", "--format", "csv"});
  EXPECT_EQ(std::count(by_compression.out.begin(), by_compression.out.end(), '\n'), 1 + 2);
  // The method (either phase) and exact-compression filters run in the coordinator,
  // so --limit counts matching rows.
  Result limited = Run({"results", "--method", "streaming", "--limit", "1", "--format", "csv"});
  ASSERT_EQ(limited.code, kExitOk) << limited.err;
  EXPECT_EQ(std::count(limited.out.begin(), limited.out.end(), '\n'), 1 + 1);
  EXPECT_THAT(limited.out, HasSubstr("streaming"));
  Result two = Run({"results", "--compression", "4", "--compression", "1000", "--format", "csv"});
  EXPECT_EQ(std::count(two.out.begin(), two.out.end(), '\n'), 1 + 2);

  Result query = Run({"query", "SELECT COUNT(*) AS n FROM samples", "--format", "csv"});
  EXPECT_EQ(query.code, kExitOk) << query.err;
  EXPECT_EQ(query.out, "n\n18\n");
  Result write = Run({"query", "DELETE FROM samples"});
  EXPECT_EQ(write.code, kExitUsage) << write.out;

  const std::string csv = (dir_ / "samples.csv").string();
  Result exported = Run({"export", "--what", "samples", "--sweep", "1", "-o", csv});
  EXPECT_EQ(exported.code, kExitOk) << exported.err;
  std::ifstream in(csv);
  std::string header;
  std::getline(in, header);
  EXPECT_THAT(header, HasSubstr("job_key,model,length"));
  int lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  EXPECT_EQ(lines, 18);

  Result workers = Run({"workers"});
  EXPECT_EQ(workers.code, kExitOk);
  EXPECT_THAT(workers.out, HasSubstr("w0"));
  EXPECT_THAT(workers.out, HasSubstr("w1"));

  // The analysis reads the same database through the read-only Query RPC. The test
  // evaluator records no architecture: the loader reads the model's config.json.
  const std::string report = (dir_ / "report").string();
  Result analyze = Run({"analyze", "--sweep", "cli-demo", "--no-plots", "--out", report});
  EXPECT_EQ(analyze.code, kExitOk) << analyze.err;
  EXPECT_THAT(analyze.out, HasSubstr("analysis of sweep 1 'cli-demo': 6 of 6 jobs done"));
  EXPECT_THAT(analyze.out, HasSubstr("architecture read from"));
  EXPECT_THAT(analyze.out, HasSubstr("report: " + report + "/index.html"));
  EXPECT_TRUE(std::filesystem::exists(report + "/points.csv"));
}

// Every read command works on the database file with no coordinator: --db FILE.
TEST_F(RemoteCommandsTest, ReadCommands_OnDatabaseFile_NeedNoCoordinator) {
  StartCluster(2);
  ASSERT_EQ(Run({"submit", spec_}).code, kExitOk);
  ASSERT_EQ(Run({"watch", "cli-demo"}).code, kExitOk);
  TearDown();  // the coordinator is gone from here on
  server_.reset();
  workers_.clear();
  const std::string db = (dir_ / "coord.db").string();

  Result list = Run({"list", "--db", db, "--format", "csv"}, false);
  EXPECT_EQ(list.code, kExitOk) << list.err;
  EXPECT_THAT(list.out, HasSubstr("1,cli-demo,finished"));

  Result status = Run({"status", "cli-demo", "--db", db}, false);
  EXPECT_EQ(status.code, kExitOk) << status.err;
  EXPECT_THAT(status.out, HasSubstr("samples        18 / 18"));
  Result status_json = Run({"status", "cli-demo", "--db", db, "--format", "json"}, false);
  ASSERT_EQ(status_json.code, kExitOk) << status_json.err;
  EXPECT_EQ(nlohmann::json::parse(status_json.out)["done"], 6);

  // The terminal table is compact (one metric legend, no metric column) unless --wide.
  Result table = Run({"results", "--db", db, "--sweep", "cli-demo"}, false);
  EXPECT_EQ(table.code, kExitOk) << table.err;
  EXPECT_THAT(table.out, HasSubstr("metric: ruler_niah = accuracy"));
  EXPECT_THAT(table.out, HasSubstr("prefill"));
  EXPECT_THAT(table.out, Not(HasSubstr("worker")));
  Result wide = Run({"results", "--db", db, "--wide"}, false);
  EXPECT_THAT(wide.out, HasSubstr("decode_compression"));
  EXPECT_THAT(wide.out, HasSubstr("worker"));
  Result json = Run({"results", "--db", db, "--method", "streaming", "--format", "json"}, false);
  ASSERT_EQ(json.code, kExitOk) << json.err;
  EXPECT_EQ(nlohmann::json::parse(json.out).size(), 4u);

  Result query = Run({"query", "--db", db, "--format", "csv",
                      "SELECT state, COUNT(*) AS n FROM job_status GROUP BY state"},
                     false);
  EXPECT_EQ(query.code, kExitOk) << query.err;
  EXPECT_EQ(query.out, "state,n\ndone,6\n");
  Result write = Run({"query", "--db", db, "DELETE FROM samples"}, false);
  EXPECT_EQ(write.code, kExitUsage);
  EXPECT_THAT(write.err, HasSubstr("only reading"));
  EXPECT_THAT(write.err, Not(HasSubstr("token")));

  // --limit counts exported rows, samples included.
  Result samples =
      Run({"export", "--db", db, "--what", "samples", "--limit", "2", "--format", "csv"}, false);
  EXPECT_EQ(samples.code, kExitOk) << samples.err;
  EXPECT_EQ(std::count(samples.out.begin(), samples.out.end(), '\n'), 1 + 2);

  Result keys =
      Run({"query", "--db", db, "--format", "csv", "SELECT key FROM jobs LIMIT 1"}, false);
  const std::string key = keys.out.substr(4, 64);
  Result job = Run({"job", key.substr(0, 10), "--db", db}, false);
  EXPECT_EQ(job.code, kExitOk) << job.err;
  EXPECT_THAT(job.out, HasSubstr("job " + key));
  EXPECT_THAT(job.out, HasSubstr("state     done"));
  EXPECT_THAT(job.out, HasSubstr("sweeps    1 'cli-demo'"));
  EXPECT_THAT(job.out, HasSubstr("  done\n"));  // its one attempt
  EXPECT_THAT(job.out, HasSubstr("result    accuracy: mean"));
  Result job_json = Run({"describe", key, "--db", db, "--format", "json"}, false);
  ASSERT_EQ(job_json.code, kExitOk) << job_json.err;
  const auto described = nlohmann::json::parse(job_json.out);
  EXPECT_EQ(described["state"], "done");
  EXPECT_EQ(described["attempts"].size(), 1u);
  EXPECT_EQ(described["result"]["n"], 3);
  Result no_job = Run({"job", "ffff0000", "--db", db}, false);
  EXPECT_EQ(no_job.code, kExitUsage);
  EXPECT_THAT(no_job.err, HasSubstr("no job with a key starting 'ffff0000'"));

  Result missing = Run({"results", "--db", (dir_ / "absent.db").string()}, false);
  EXPECT_EQ(missing.code, kExitUsage);
  EXPECT_THAT(missing.err, HasSubstr("absent.db"));
  Result both = Run({"list", "--db", db});  // --coordinator too
  EXPECT_EQ(both.code, kExitUsage);
}

// A job that fails says why: in watch as it happens, in status, in job's attempts.
TEST_F(RemoteCommandsTest, FailedJobs_ExplainThemselves) {
  evaluator_options_.refuse_task = "ruler_niah";
  StartCluster(1);
  ASSERT_EQ(Run({"submit", spec_}).code, kExitOk);
  Result watch = Run({"watch", "cli-demo"});
  EXPECT_EQ(watch.code, kExitFailure);
  EXPECT_THAT(watch.out, HasSubstr("test evaluator refuses task ruler_niah"));
  // Events without counts (all but a batch's last) leave the bar's counts be.
  EXPECT_THAT(watch.out, Not(HasSubstr("done 0/0")));

  Result status = Run({"status", "cli-demo"});
  EXPECT_EQ(status.code, kExitOk) << status.err;
  EXPECT_THAT(status.out, HasSubstr("failed jobs (sfctl job KEY shows every attempt)"));
  EXPECT_THAT(status.out, HasSubstr("test evaluator refuses task ruler_niah"));
  EXPECT_THAT(status.out, HasSubstr("tiny L=512"));

  Result failed = Run(
      {"query", "--format", "csv", "SELECT key FROM job_status WHERE state = 'failed' LIMIT 1"});
  ASSERT_EQ(failed.code, kExitOk) << failed.err;
  const std::string key = failed.out.substr(4, 64);
  Result job = Run({"job", key});
  EXPECT_EQ(job.code, kExitOk) << job.err;
  EXPECT_THAT(job.out, HasSubstr("state     failed"));
  EXPECT_THAT(job.out, HasSubstr("1  w0"));
  EXPECT_THAT(job.out, HasSubstr("failed\n"));
  EXPECT_THAT(job.out, HasSubstr("test evaluator refuses task ruler_niah"));

  // The analysis of a sweep whose every job failed says so, not "wait for workers".
  Result analyze = Run({"analyze", "cli-demo", "--no-plots", "--out", (dir_ / "r").string()});
  EXPECT_EQ(analyze.code, kExitUsage);
  EXPECT_THAT(analyze.err, HasSubstr("has no done job"));
  EXPECT_THAT(analyze.err, HasSubstr("sfctl retry 1"));
  EXPECT_THAT(analyze.err, Not(HasSubstr("wait for workers")));

  // watch --format json: every event of the sweep as one JSON line, failures with why.
  Result events = Run({"watch", "cli-demo", "--format", "json"});
  EXPECT_EQ(events.code, kExitFailure);
  std::istringstream lines(events.out);
  int failed_events = 0, parsed = 0;
  for (std::string line; std::getline(lines, line);) {
    const auto e = nlohmann::json::parse(line);
    ++parsed;
    if (e["kind"] == "job_failed") {
      ++failed_events;
      EXPECT_THAT(e["message"].get<std::string>(), HasSubstr("refuses task ruler_niah"));
    }
  }
  EXPECT_GT(parsed, 0);
  EXPECT_GT(failed_events, 0);
  // The last event carries the final counts.
  const std::string last = events.out.substr(events.out.rfind('\n', events.out.size() - 2) + 1);
  EXPECT_EQ(nlohmann::json::parse(last)["counts"]["failed"], 6) << last;
}

// analyze takes its coordinator from $SF_COORDINATOR like every other command (with no
// --db and no --coordinator), instead of looking for sfctl-run.db.
TEST_F(RemoteCommandsTest, Analyze_HonoursSfCoordinator) {
  StartCluster(2);
  Result submitted = Run({"submit", spec_, "--format", "json"});
  ASSERT_EQ(submitted.code, kExitOk) << submitted.err;
  EXPECT_EQ(nlohmann::json::parse(submitted.out)["jobs"], 6);
  ASSERT_EQ(Run({"watch", "cli-demo"}).code, kExitOk);
  ASSERT_EQ(setenv("SF_COORDINATOR", address_.c_str(), 1), 0);
  Result analyze =
      Run({"analyze", "cli-demo", "--no-plots", "--out", (dir_ / "env-report").string()}, false);
  unsetenv("SF_COORDINATOR");
  EXPECT_EQ(analyze.code, kExitOk) << analyze.err;
  EXPECT_THAT(analyze.out, HasSubstr("analysis of sweep 1 'cli-demo'"));
  EXPECT_TRUE(std::filesystem::exists(dir_ / "env-report" / "index.html"));
  // Without it (and without --db), the database of `sfctl run` in the working folder.
  if (std::filesystem::exists("sfctl-run.db")) return;
  Result local = Run({"analyze", "cli-demo", "--no-plots"}, false);
  EXPECT_EQ(local.code, kExitUsage);
  EXPECT_THAT(local.err, HasSubstr("sfctl-run.db"));
}

TEST_F(RemoteCommandsTest, CancelThenRetry_RequeuesCancelledJobs) {
  StartCluster(0);  // no workers: the jobs stay queued
  ASSERT_EQ(Run({"submit", spec_}).code, kExitOk);
  Result cancel = Run({"cancel", "cli-demo"});
  EXPECT_EQ(cancel.code, kExitOk) << cancel.err;
  EXPECT_THAT(cancel.out, HasSubstr("cancelled 6 jobs"));
  Result watch = Run({"watch", "1"});
  EXPECT_EQ(watch.code, kExitFailure);  // a cancelled sweep is not a success
  Result retry = Run({"retry", "1", "--include-cancelled"});
  EXPECT_EQ(retry.code, kExitOk) << retry.err;
  EXPECT_THAT(retry.out, HasSubstr("re-queued 6 jobs"));
}

TEST_F(RemoteCommandsTest, Errors_MapToDocumentedExitCodes) {
  StartCluster(0);
  std::ofstream(dir_ / "bad.yaml") << "name: bad\nmodels: [{name: x, path: models/none}]\n";
  Result bad = Run({"submit", (dir_ / "bad.yaml").string()});
  EXPECT_EQ(bad.code, kExitUsage);
  EXPECT_THAT(bad.err, HasSubstr("bad.yaml:"));
  Result missing = Run({"status", "no-such-sweep"});
  EXPECT_EQ(missing.code, kExitUsage);
  EXPECT_THAT(missing.err, HasSubstr("no sweep 'no-such-sweep'"));
  Result format = Run({"results", "--format", "xml"});
  EXPECT_EQ(format.code, kExitUsage);
  Result down = Run({"list", "--coordinator", "127.0.0.1:1", "--timeout", "2"}, false);
  EXPECT_EQ(down.code, kExitUnavailable);
  EXPECT_THAT(down.err, HasSubstr("not reachable"));
  Result token = Run({"list", "--token-file", (dir_ / "nope").string()});
  EXPECT_EQ(token.code, kExitUsage);
}

TEST_F(RemoteCommandsTest, EveryCommand_HasHelp) {
  for (const char* command : {"submit", "watch", "status", "list", "cancel", "retry", "results",
                              "query", "export", "workers", "run", "analyze"}) {
    Result help = Run({command, "--help"}, false);
    EXPECT_EQ(help.code, kExitOk) << command;
    EXPECT_THAT(help.out, HasSubstr("--")) << command;
    if (std::string(command) != "run") {
      EXPECT_THAT(help.out, HasSubstr("--coordinator")) << command;
    }
  }
}

TEST_F(RemoteCommandsTest, RunLocally_RunsTheSweepAndPrintsResults) {
  LocalRunOptions options;
  options.submit.spec_path = spec_;
  options.db_path = (dir_ / "run.db").string();
  options.workers = 2;
  std::istringstream in;
  std::ostringstream out, err;
  Io io{in, out, err};
  auto evaluators = [](int) { return std::make_unique<worker::testing::TestEvaluator>(); };
  EXPECT_EQ(RunLocally(options, evaluators, io), kExitOk) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("6 jobs (6 new, 0 reused)"));
  EXPECT_THAT(out.str(), HasSubstr("done 6/6"));
  EXPECT_THAT(out.str(), HasSubstr("mean"));  // the results table
  // ... then the analysis and its report beside the database.
  EXPECT_THAT(out.str(), HasSubstr("analysis of sweep 1 'cli-demo'"));
  EXPECT_THAT(out.str(), HasSubstr((dir_ / "run-report/sweep-1/index.html").string()));
  // ... and how long it took and what to run next.
  EXPECT_THAT(out.str(), HasSubstr("sweep 1 'cli-demo': 6 of 6 jobs done in "));
  EXPECT_THAT(out.str(), HasSubstr("sfctl results --db " + options.db_path));
  // Running again reuses every job.
  std::ostringstream out2;
  Io io2{in, out2, err};
  EXPECT_EQ(RunLocally(options, evaluators, io2), kExitOk) << err.str();
  EXPECT_THAT(out2.str(), HasSubstr("(0 new, 6 reused)"));
}

// With --format json stdout holds the results only (a JSON array of the 6 rows): the
// submission line, the progress and the summary go to stderr.
TEST_F(RemoteCommandsTest, RunLocally_FormatJson_StdoutIsOnlyTheResults) {
  LocalRunOptions options;
  options.submit.spec_path = spec_;
  options.db_path = (dir_ / "run-json.db").string();
  options.workers = 2;
  options.format = "json";
  std::istringstream in;
  std::ostringstream out, err;
  Io io{in, out, err};
  auto evaluators = [](int) { return std::make_unique<worker::testing::TestEvaluator>(); };
  ASSERT_EQ(RunLocally(options, evaluators, io), kExitOk) << err.str();
  const nlohmann::json rows = nlohmann::json::parse(out.str(), nullptr, false);
  ASSERT_FALSE(rows.is_discarded()) << "stdout is not JSON:\n" << out.str();
  ASSERT_TRUE(rows.is_array());
  EXPECT_EQ(rows.size(), 6u);
  EXPECT_THAT(err.str(), HasSubstr("6 jobs (6 new, 0 reused)"));
  EXPECT_THAT(err.str(), HasSubstr("done 6/6"));
}

// The test spec's model folder holds a placeholder, not real weights: the production
// evaluator must fail every job with an error naming the file, and sfctl must say so.
TEST_F(RemoteCommandsTest, Run_ProductionWorkers_CorruptModel_FailJobsNamingTheFile) {
  const std::string db = (dir_ / "prod.db").string();
  Result r = Run({"run", spec_, "--db", db}, false);
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("6 of 6 jobs failed"));
  EXPECT_THAT(r.out, HasSubstr("why jobs failed"));
  EXPECT_THAT(r.err, HasSubstr("malformed safetensors header in"));
  EXPECT_THAT(r.err, HasSubstr("models/tiny/model.safetensors"));
}

}  // namespace
}  // namespace sf::cli
