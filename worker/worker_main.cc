#include "worker/worker_main.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/version.h"
#include "coordinator/client.h"
#include "coordinator/health_check.h"
#include "kernels/device.h"
#include "worker/outbox.h"
#include "worker/worker.h"
#include "worker/worker_client.h"

namespace sf::worker {
namespace {

std::string Hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

// Exit code of `sf-worker --health`: 0 when the coordinator's health service answers
// SERVING within `timeout_s`.
int CheckCoordinatorHealth(const sf::ConnectionOptions& connection, double timeout_s) {
  absl::Status status =
      sf::CheckHealth(sf::MakeCoordinatorChannel(connection), "", absl::Seconds(timeout_s));
  if (!status.ok()) {
    std::cerr << "sf-worker: coordinator " << connection.address
              << " is not serving: " << status.message() << "\n";
    return 1;
  }
  std::cout << "sf-worker: coordinator " << connection.address << " is serving\n";
  return 0;
}

}  // namespace

SlurmPlacement SlurmPlacementFromEnvironment(
    const std::function<const char*(const char*)>& getenv) {
  auto read = [&getenv](const char* name) {
    const char* value = getenv(name);
    return std::string(value == nullptr ? "" : value);
  };
  SlurmPlacement placement;
  const std::string array_job = read("SLURM_ARRAY_JOB_ID");
  const std::string array_task = read("SLURM_ARRAY_TASK_ID");
  placement.job_id = !array_job.empty() && !array_task.empty()
                         ? absl::StrCat(array_job, "_", array_task)
                         : read("SLURM_JOB_ID");
  placement.node = read("SLURMD_NODENAME");
  return placement;
}

absl::StatusOr<std::vector<v1::Device>> LocalDevices() {
  SF_ASSIGN_OR_RETURN(std::vector<DeviceInfo> found, ListDevices());
  std::vector<v1::Device> devices;
  for (const DeviceInfo& d : found) {
    v1::Device& device = devices.emplace_back();
    device.set_index(d.index);
    device.set_name(d.name);
    device.set_memory_bytes(d.total_memory_bytes);
    // What placement sizes jobs by (the coordinator checks it is within the total).
    device.set_free_memory_bytes(std::clamp<int64_t>(d.free_memory_bytes, 0, d.total_memory_bytes));
  }
  return devices;
}

int WorkerMain(int argc, char** argv, const WorkerMainHooks& hooks) {
  std::string coordinator, token_file, worker_id, outbox_path, on_term = "release", log_level;
  int64_t max_jobs = 0;
  double lease_wait_s = 10;
  bool health = false;
  double health_timeout_s = 5;
  sf::TlsClientFiles tls;
  CLI::App app(
      "sf-worker: leases jobs from an sf-coordinator, evaluates them with the model engine\n"
      "and reports every sample through a local SQLite outbox (re-sent after a crash).",
      "sf-worker");
  if (!hooks.description.empty()) app.description(hooks.description);
  if (hooks.add_flags) hooks.add_flags(app);
  app.add_option("--coordinator", coordinator,
                 "coordinator address host:port (default $SF_COORDINATOR or localhost:50051)");
  app.add_option("--token-file", token_file, "file holding the workers' bearer token");
  app.add_option("--tls-ca", tls.ca,
                 "PEM CA bundle that signed the coordinator's certificate: connect with TLS");
  app.add_option("--tls-cert", tls.cert, "PEM client certificate, for mutual TLS");
  app.add_option("--tls-key", tls.key, "PEM private key of --tls-cert");
  app.add_option("--worker-id", worker_id,
                 "stable id of this worker (default <hostname>-<pid's slot>: set it when "
                 "several workers share a host, so a restart finds its own outbox)");
  app.add_option("--outbox", outbox_path,
                 "SQLite outbox file (default sf-worker-<worker-id>.outbox.db)");
  app.add_option("--on-term", on_term,
                 "on SIGTERM: 'release' the running job (Fail preempted, samples kept) or "
                 "'finish' it first; a second signal always releases")
      ->check(CLI::IsMember({"release", "finish"}));
  app.add_option("--max-jobs", max_jobs, "exit after this many leases (0 = run until stopped)");
  app.add_option("--lease-wait", lease_wait_s, "seconds one Lease long poll may wait");
  app.add_option("--log-level", log_level, "debug, info, warning or error");
  app.add_flag("--health", health,
               "only check that the coordinator (--coordinator, with the TLS flags) answers "
               "the standard gRPC health check as serving, then exit: 0 serving, 1 not");
  app.add_option("--health-timeout", health_timeout_s,
                 "seconds --health waits for the coordinator to answer")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (!log_level.empty()) {
    sf::LogLevel level;
    if (!sf::ParseLogLevel(log_level, &level)) {
      std::cerr << "sf-worker: unknown --log-level " << log_level << "\n";
      return 2;
    }
    sf::SetMinLogLevel(level);
  }
  if (health) {
    auto credentials = sf::MakeChannelCredentials(tls);
    if (!credentials.ok()) {
      std::cerr << "sf-worker: " << credentials.status().message() << "\n";
      return 2;
    }
    sf::ConnectionOptions connection;
    connection.address = sf::ResolveCoordinatorAddress(coordinator);
    connection.credentials = *credentials;
    return CheckCoordinatorHealth(connection, health_timeout_s);
  }
  absl::StatusOr<std::string> token = sf::ReadTokenFile(token_file);
  if (!token.ok()) {
    std::cerr << "sf-worker: " << token.status().message() << "\n";
    return 2;
  }
  if (worker_id.empty()) worker_id = Hostname() + "-0";
  if (outbox_path.empty()) outbox_path = "sf-worker-" + worker_id + ".outbox.db";

  // Signals are taken by one thread with sigwait, so Stop() runs outside a handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);  // sent by main to end the signal thread
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // After the mask: building credentials starts gRPC's threads, which inherit it.
  auto credentials = sf::MakeChannelCredentials(tls);
  if (!credentials.ok()) {
    std::cerr << "sf-worker: " << credentials.status().message() << "\n";
    return 2;
  }

  absl::StatusOr<std::unique_ptr<sf::worker::Outbox>> outbox =
      sf::worker::Outbox::Open(outbox_path);
  if (!outbox.ok()) {
    std::cerr << "sf-worker: " << outbox.status().message() << "\n";
    return 1;
  }

  sf::worker::WorkerOptions options;
  options.worker_id = worker_id;
  options.hostname = Hostname();
  options.engine_version = sf::kEngineVersion;
  options.lease_wait = absl::Seconds(lease_wait_s);
  options.max_jobs = max_jobs;
  const SlurmPlacement slurm = SlurmPlacementFromEnvironment(&std::getenv);
  options.slurm_job_id = slurm.job_id;
  options.slurm_node = slurm.node;
  std::vector<std::string> backends = {"cpu"};
  absl::StatusOr<std::vector<sf::v1::Device>> devices = LocalDevices();
  if (devices.ok()) {
    options.devices = *devices;
    if (!devices->empty()) backends.insert(backends.begin(), "cuda");
  } else {
    SF_LOG(WARNING) << "sf-worker: listing devices failed (" << devices.status().message()
                    << "); registering as CPU only";
  }

  sf::ConnectionOptions connection;
  connection.address = sf::ResolveCoordinatorAddress(coordinator);
  connection.token = *token;
  connection.credentials = *credentials;
  std::unique_ptr<sf::worker::WorkerClient> client =
      sf::worker::NewGrpcWorkerClient(sf::MakeCoordinatorChannel(connection), {.token = *token});
  std::unique_ptr<sf::worker::Evaluator> evaluator = hooks.make_evaluator(backends);
  sf::worker::Worker worker(options, client.get(), evaluator.get(), outbox->get(),
                            &sf::RealClock());

  std::thread signal_thread([&] {
    const sf::worker::StopMode first =
        on_term == "finish" ? sf::worker::StopMode::kFinishJob : sf::worker::StopMode::kRelease;
    for (int received = 0;; ++received) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (sig == SIGUSR1) return;
      SF_LOG(INFO) << "sf-worker: signal " << sig << ": stopping";
      worker.Stop(received == 0 ? first : sf::worker::StopMode::kRelease);
    }
  });
  SF_LOG(INFO) << "sf-worker " << worker_id << ": coordinator " << connection.address << ", outbox "
               << outbox_path << ", " << options.devices.size() << " device(s)"
               << (slurm.job_id.empty()
                       ? ""
                       : absl::StrCat(", Slurm job ", slurm.job_id, " on ", slurm.node));
  absl::Status status = worker.Run();
  pthread_kill(signal_thread.native_handle(), SIGUSR1);
  signal_thread.join();
  if (!status.ok()) {
    std::cerr << "sf-worker: " << status.message() << "\n";
    return 1;
  }
  const sf::worker::WorkerStats stats = worker.stats();
  SF_LOG(INFO) << "sf-worker " << worker_id << ": stopped; " << stats.jobs_completed
               << " completed, " << stats.jobs_failed << " failed, " << stats.jobs_released
               << " released";
  return 0;
}

}  // namespace sf::worker
