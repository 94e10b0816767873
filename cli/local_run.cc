#include "cli/local_run.h"

#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/version.h"
#include "coordinator/client.h"
#include "coordinator/scheduler.h"
#include "coordinator/service.h"
#include "worker/outbox.h"
#include "worker/worker.h"
#include "worker/worker_client.h"

namespace sf::cli {

namespace {

// The last lines of a run: how long it took and what to run next.
void PrintRunSummary(const v1::Sweep& sweep, absl::Duration took, const LocalRunOptions& options,
                     std::ostream& out) {
  const v1::SweepCounts& c = sweep.counts();
  const std::string db = options.db_path == kDefaultRunDatabase
                             ? std::string()
                             : absl::StrCat(" --db ", options.db_path);
  out << "\nsweep " << sweep.id() << " '" << sweep.name() << "': " << c.done() << " of "
      << c.total() << " jobs done";
  if (c.failed() > 0) out << ", " << c.failed() << " failed";
  out << " in " << absl::FormatDuration(absl::Trunc(took, absl::Seconds(1))) << "\n"
      << "next:\n";
  if (c.failed() > 0) {
    out << "  sfctl status " << sweep.name() << " --db " << options.db_path
        << "      why jobs failed (sfctl job KEY --db " << options.db_path << ": every attempt)\n"
        << "  sfctl run " << options.submit.spec_path << db
        << "      after fixing the cause: runs the failed jobs again\n";
  }
  out << "  sfctl results --db " << options.db_path << " --sweep " << sweep.name()
      << "      the table again (--wide, --format csv)\n"
      << "  sfctl analyze " << sweep.name() << db << "      redraw the report\n";
}

}  // namespace

int RunLocally(const LocalRunOptions& options, const EvaluatorFactory& evaluators, Io& io) {
  const absl::Time started = RealClock().Now();
  // Validate before starting anything: an invalid spec touches no database.
  absl::StatusOr<v1::SubmitSweepRequest> request = BuildSubmitRequest(options.submit);
  if (!request.ok()) return ReportStatus(request.status(), io);
  absl::StatusOr<Format> format = ParseFormat(options.format);
  if (!format.ok()) return ReportStatus(format.status(), io);
  // With --format csv or json, stdout carries the results only: the submission line and
  // the progress go to stderr.
  std::ostream& status_out = *format == Format::kTable ? io.out : io.err;
  Io status_io{io.in, status_out, io.err};

  coordinator::SchedulerOptions scheduler_options;
  scheduler_options.lease_ttl = options.lease_ttl;
  scheduler_options.max_lease_wait = absl::Seconds(1);
  auto scheduler = coordinator::Scheduler::Open(options.db_path, &RealClock(), scheduler_options);
  if (!scheduler.ok()) {
    return ReportStatus(Annotate(scheduler.status(), absl::StrCat("opening ", options.db_path)),
                        io);
  }
  coordinator::ServerOptions server_options;
  server_options.listen = "127.0.0.1:0";
  auto server = coordinator::CoordinatorServer::Start(scheduler->get(), server_options);
  if (!server.ok()) return ReportStatus(server.status(), io);
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());
  ConnectionOptions connection;
  connection.address = address;
  auto channel = MakeCoordinatorChannel(connection);
  Remote remote(channel, address, "", absl::Seconds(60));

  absl::StatusOr<v1::SubmitSweepResponse> submitted = Submit(remote, *request, status_io);
  if (!submitted.ok()) return ReportStatus(submitted.status(), io);

  struct LocalWorker {
    std::unique_ptr<worker::Evaluator> evaluator;
    std::unique_ptr<worker::Outbox> outbox;
    std::unique_ptr<worker::WorkerClient> client;
    std::unique_ptr<worker::Worker> worker;
    std::thread thread;
    absl::Status status;
  };
  std::vector<std::unique_ptr<LocalWorker>> workers;
  int exit_code = kExitOk;
  for (int i = 0; i < options.workers; ++i) {
    auto w = std::make_unique<LocalWorker>();
    w->evaluator = evaluators(i);
    auto outbox = worker::Outbox::Open(absl::StrCat(options.db_path, ".worker", i, ".outbox"));
    if (!outbox.ok()) {
      exit_code = ReportStatus(outbox.status(), io);
      break;
    }
    w->outbox = std::move(*outbox);
    w->client = worker::NewGrpcWorkerClient(channel, {});
    worker::WorkerOptions wo;
    wo.worker_id = absl::StrCat("local-", i);
    wo.hostname = "localhost";
    wo.engine_version = kEngineVersion;
    wo.lease_wait = absl::Seconds(1);
    wo.devices = options.devices;
    w->worker = std::make_unique<worker::Worker>(wo, w->client.get(), w->evaluator.get(),
                                                 w->outbox.get(), &RealClock());
    LocalWorker* raw = w.get();
    w->thread = std::thread([raw] { raw->status = raw->worker->Run(); });
    workers.push_back(std::move(w));
  }

  absl::StatusOr<v1::Sweep> final_state = absl::UnknownError("not watched");
  // Outlives the workers: a log line they write while the sink is being reset may still
  // reach it.
  const bool terminal = IsTerminal(status_out);
  ProgressDisplay display(status_out, terminal, &RealClock());
  if (exit_code == kExitOk) {
    // On a terminal, log lines go above the bars, which are redrawn below them.
    if (terminal) SetLogSink([&display](absl::string_view line) { display.Note(line); });
    WatchOptions watch;
    ShowWatchNotes(&display, &watch);
    final_state = WatchUntilDone(remote, submitted->sweep_id(), display, watch, &RealClock());
    SetLogSink(nullptr);
  }
  for (auto& w : workers) w->worker->Stop(worker::StopMode::kRelease);
  for (auto& w : workers) {
    w->thread.join();
    if (!w->status.ok()) SF_LOG(WARNING) << "local worker: " << w->status.message();
  }
  if (exit_code != kExitOk) return exit_code;
  if (!final_state.ok()) return ReportStatus(final_state.status(), io);
  const absl::Duration took = RealClock().Now() - started;

  std::unique_ptr<ReadSource> reader = CoordinatorSource(&remote);
  ResultFilters filters;
  filters.sweep = absl::StrCat(submitted->sweep_id());
  absl::StatusOr<std::vector<v1::ResultRow>> results = FetchResultRows(*reader, filters);
  if (!results.ok()) return ReportStatus(results.status(), io);
  status_out << "\n";
  PrintResults(*results, *format, /*wide=*/false, io.out);
  const v1::SweepCounts& counts = final_state->counts();
  if (counts.failed() > 0) {
    io.err << "sfctl: " << counts.failed() << " of " << counts.total() << " jobs failed\n";
    absl::StatusOr<std::vector<FailedJob>> failed =
        FetchFailedJobs(*reader, submitted->sweep_id(), 5);
    if (failed.ok()) PrintFailedJobs(*failed, counts.failed(), io.err);
  }
  if (options.analyze && final_state->counts().done() > 0) {
    // With --format csv/json stdout stays machine-readable: the summary goes to stderr.
    Io analysis_io{io.in, *format == Format::kTable ? io.out : io.err, io.err};
    analysis_io.out << "\n";
    AnalyzeOptions analysis = options.analysis;
    analysis.plots_optional = true;
    absl::StatusOr<std::unique_ptr<ResultsSource>> source = DatabaseSource(options.db_path);
    // The sweep's own outcome decides the exit code; a failed analysis is reported only.
    if (source.ok()) {
      AnalyzeSweep(**source, absl::StrCat(submitted->sweep_id()), options.db_path, analysis,
                   analysis_io);
    } else {
      ReportStatus(source.status(), analysis_io);
    }
  }
  PrintRunSummary(*final_state, took, options, *format == Format::kTable ? io.out : io.err);
  (*server)->Shutdown(absl::Seconds(2));
  (*server)->Wait();
  return final_state->counts().failed() > 0 || final_state->state() != v1::SWEEP_STATE_FINISHED
             ? kExitFailure
             : kExitOk;
}

}  // namespace sf::cli
