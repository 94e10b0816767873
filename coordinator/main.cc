// sf-coordinator: serves the sf.v1 gRPC API over a SQLite database. All state lives
// in the database, so a restart (even after SIGKILL) resumes every sweep.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/crash_trace.h"
#include "common/logging.h"
#include "common/status.h"
#include "coordinator/scheduler.h"
#include "coordinator/service.h"

namespace {

absl::StatusOr<std::string> ReadToken(const std::string& path) {
  if (path.empty()) return std::string();
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read token file ", path));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(buffer.str()));
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("token file ", path, " is empty"));
  }
  return token;
}

absl::StatusOr<absl::Duration> ParseDurationFlag(const std::string& name, const std::string& text) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, "=", text, ": give a positive duration such as 60s or 5m"));
  }
  return d;
}

absl::Status Run(int argc, char** argv, int* exit_code) {
  CLI::App app{
      "sf-coordinator: stores sweeps and leases their jobs to sf-worker processes over gRPC.\n"
      "Without token files it listens on loopback only."};
  std::string listen = "127.0.0.1:50051";
  std::string db = "sf-coordinator.db";
  std::string worker_token_file, user_token_file;
  std::string lease_ttl = "60s", backoff = "5s", max_wait = "30s";
  int max_attempts = 3;
  std::string log_level = "info";
  sf::TlsServerFiles tls;
  app.add_option("--listen", listen, "host:port to serve on (port 0 = any free port)")
      ->capture_default_str();
  app.add_option("--db", db, "SQLite database file (created if absent)")->capture_default_str();
  app.add_option("--worker-token,--worker-token-file", worker_token_file,
                 "file holding the bearer token workers must present");
  app.add_option("--user-token,--user-token-file", user_token_file,
                 "file holding the bearer token sfctl must present");
  app.add_option("--tls-cert", tls.cert,
                 "PEM certificate chain: serve TLS instead of plaintext (with --tls-key)");
  app.add_option("--tls-key", tls.key, "PEM private key of --tls-cert");
  app.add_option("--tls-client-ca", tls.client_ca,
                 "PEM CA bundle: require mutual TLS, clients present a certificate it signed");
  app.add_option("--lease-ttl", lease_ttl, "lease lifetime without a heartbeat")
      ->capture_default_str();
  app.add_option("--backoff", backoff, "re-queue delay after a first failed attempt (doubles)")
      ->capture_default_str();
  app.add_option("--max-lease-wait", max_wait, "longest a Lease long-poll is held")
      ->capture_default_str();
  app.add_option("--max-attempts", max_attempts, "failed attempts before a job is failed")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  std::string health_listen;
  app.add_option("--health-listen", health_listen,
                 "host:port of a second, plaintext port serving only the standard gRPC health "
                 "service, for probes that cannot use TLS (e.g. 0.0.0.0:50052; default none)");
  app.add_option("--log-level", log_level, "debug, info, warning or error")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code = app.exit(e);
    return absl::OkStatus();
  }
  sf::LogLevel level;
  if (!sf::ParseLogLevel(log_level, &level)) {
    return absl::InvalidArgumentError(absl::StrCat("--log-level=", log_level, " is unknown"));
  }
  sf::SetMinLogLevel(level);

  sf::coordinator::SchedulerOptions options;
  SF_ASSIGN_OR_RETURN(options.lease_ttl, ParseDurationFlag("lease-ttl", lease_ttl));
  SF_ASSIGN_OR_RETURN(options.backoff_base, ParseDurationFlag("backoff", backoff));
  SF_ASSIGN_OR_RETURN(options.max_lease_wait, ParseDurationFlag("max-lease-wait", max_wait));
  options.max_attempts = max_attempts;
  sf::coordinator::ServerOptions server_options;
  server_options.listen = listen;
  server_options.tls = tls;
  server_options.health_listen = health_listen;
  SF_ASSIGN_OR_RETURN(server_options.worker_token, ReadToken(worker_token_file));
  SF_ASSIGN_OR_RETURN(server_options.user_token, ReadToken(user_token_file));

  // Signals are taken synchronously by this thread; block them before gRPC starts its
  // threads so that they inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  SF_ASSIGN_OR_RETURN(auto scheduler,
                      sf::coordinator::Scheduler::Open(db, &sf::RealClock(), options));
  SF_ASSIGN_OR_RETURN(auto server,
                      sf::coordinator::CoordinatorServer::Start(scheduler.get(), server_options));
  // One line on stdout that scripts and tests read to find the port.
  std::printf("sf-coordinator listening on port %d (db %s%s)\n", server->port(), db.c_str(),
              tls.enabled() ? (tls.client_ca.empty() ? ", TLS" : ", mutual TLS") : "");
  std::fflush(stdout);
  SF_LOG(INFO) << "listening on " << listen << " (port " << server->port() << "), db " << db;
  if (server->health_port() != 0) {
    SF_LOG(INFO) << "health service (plaintext) on " << health_listen << " (port "
                 << server->health_port() << ")";
  }

  // Leases also expire lazily on every call; this sweep makes expiry visible to
  // watchers when no worker calls in.
  const struct timespec tick = {1, 0};
  while (true) {
    int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      SF_LOG(INFO) << "signal " << sig << ": shutting down";
      break;
    }
    auto expired = scheduler->ExpireLeases();
    if (!expired.ok()) SF_LOG(WARNING) << "expiring leases: " << expired.status();
  }
  server->Shutdown(absl::Seconds(5));
  server->Wait();
  SF_LOG(INFO) << "stopped";
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  sf::InstallCrashTrace(argv[0]);
  int exit_code = 0;
  absl::Status status = Run(argc, argv, &exit_code);
  if (!status.ok()) {
    std::fprintf(stderr, "sf-coordinator: %s\n", status.ToString().c_str());
    return 1;
  }
  return exit_code;
}
