// coordinator_load_bench: a real sf-coordinator process under cluster-scale load
// (bench/NOTES.md). N simulated workers, each on its own connection as separate worker
// processes would be, join at once, then long-poll an empty queue for a while; then a
// sweep arrives and they drain it (Lease + ReportSamples + Complete). Reports the join
// time, the coordinator's memory, threads and file descriptors (from /proc), lease
// latency and jobs/s.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "sf/v1/coordinator.grpc.pb.h"
#include "sf/v1/worker.grpc.pb.h"
#include "tests/testing/process.h"

namespace sf {
namespace {

// What /proc says of a process: resident and peak resident memory, threads, open files,
// and CPU time (user + system) in seconds.
struct ProcStats {
  int64_t rss_kb = 0, hwm_kb = 0, threads = 0, fds = 0;
  double cpu_s = 0;
};

// utime + stime from /proc/PID/stat (fields 14 and 15, after the parenthesised name).
double ReadCpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields = absl::StrSplit(text.substr(close + 2), ' ');
  // fields[0] is field 3 (state), so utime (14) and stime (15) are fields[11] and [12].
  int64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return 0;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

ProcStats ReadProcStats(pid_t pid) {
  ProcStats s;
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(status, line);) {
    auto value = [&line](const char* key, int64_t* out) {
      if (line.rfind(key, 0) != 0) return;
      std::string digits;
      for (char c : line.substr(std::string(key).size())) {
        if (c >= '0' && c <= '9') digits += c;
      }
      (void)absl::SimpleAtoi(digits, out);
    };
    value("VmRSS:", &s.rss_kb);
    value("VmHWM:", &s.hwm_kb);
    value("Threads:", &s.threads);
  }
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/fd"), ec);
       !ec && it != std::filesystem::directory_iterator(); ++it) {
    ++s.fds;
  }
  s.cpu_s = ReadCpuSeconds(pid);
  return s;
}

v1::JobSpec LoadJob(int64_t i, int samples) {
  v1::JobSpec job;
  job.set_key(absl::StrFormat("%016x", 0x10ad000000 + i));
  job.mutable_model()->set_name("m");
  job.mutable_model()->set_identity("id-m");
  job.mutable_model()->set_path("/models/m");
  job.set_sequence_length(16384);
  job.mutable_prefill()->set_name("dense");
  job.mutable_decode()->set_name("dense");
  job.mutable_task()->set_name("ruler_niah");
  job.mutable_task()->set_samples(samples);
  job.set_memory_bytes(1 << 20);
  job.set_cost(1);
  return job;
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

struct Shared {
  std::atomic<int> registered{0};
  std::atomic<int64_t> idle_polls{0}, errors{0}, done{0};
  std::atomic<bool> stop{false};
  // When the sweep was stored (unix ns): latency counts only leases asked for after it,
  // not long polls that were already waiting on the empty queue.
  std::atomic<int64_t> submitted_ns{std::numeric_limits<int64_t>::max()};
  absl::Mutex mu;
  std::vector<double> register_ms ABSL_GUARDED_BY(mu);
  std::vector<double> lease_ms ABSL_GUARDED_BY(mu);  // leases that carried a job
};

void RunWorker(int index, const std::string& address, int64_t jobs, int samples, int wait_ms,
               Shared* shared) {
  grpc::ChannelArguments args;
  args.SetInt("sf.load_worker", index);  // distinct arguments: a connection of its own
  auto stub = v1::WorkerService::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  const std::string id = absl::StrCat("load-", index);
  v1::RegisterWorkerRequest reg;
  reg.set_worker_id(id);
  reg.set_hostname("load");
  v1::Device* device = reg.add_devices();
  device->set_name("H200");
  device->set_memory_bytes(141LL << 30);
  const absl::Time r0 = absl::Now();
  grpc::ClientContext rctx;
  rctx.set_wait_for_ready(true);
  v1::RegisterWorkerResponse rresp;
  if (!stub->RegisterWorker(&rctx, reg, &rresp).ok()) {
    shared->errors.fetch_add(1);
    return;
  }
  {
    absl::MutexLock lock(&shared->mu);
    shared->register_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - r0));
  }
  shared->registered.fetch_add(1);
  std::vector<double> lease_ms;
  while (!shared->stop.load() && shared->done.load() < jobs) {
    v1::LeaseRequest lr;
    lr.set_worker_id(id);
    lr.set_wait_ms(wait_ms);
    grpc::ClientContext lctx;
    v1::LeaseResponse lease;
    const absl::Time l0 = absl::Now();
    if (!stub->Lease(&lctx, lr, &lease).ok()) {
      if (!shared->stop.load()) shared->errors.fetch_add(1);
      continue;
    }
    if (!lease.has_lease()) {
      shared->idle_polls.fetch_add(1);
      continue;
    }
    if (absl::ToUnixNanos(l0) >= shared->submitted_ns.load()) {
      lease_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - l0));
    }
    v1::ReportSamplesRequest rs;
    rs.set_lease_token(lease.lease().lease_token());
    for (int s = 0; s < samples; ++s) {
      v1::SampleResult* sample = rs.add_samples();
      sample->set_index(s);
      sample->set_score(1);
    }
    grpc::ClientContext sctx;
    v1::ReportSamplesResponse sresp;
    if (!stub->ReportSamples(&sctx, rs, &sresp).ok()) shared->errors.fetch_add(1);
    v1::CompleteRequest c;
    c.set_lease_token(lease.lease().lease_token());
    c.mutable_result()->set_mean(1);
    grpc::ClientContext cctx;
    v1::CompleteResponse cresp;
    if (stub->Complete(&cctx, c, &cresp).ok()) {
      shared->done.fetch_add(1);
    } else {
      shared->errors.fetch_add(1);
    }
  }
  absl::MutexLock lock(&shared->mu);
  shared->lease_ms.insert(shared->lease_ms.end(), lease_ms.begin(), lease_ms.end());
}

int Main(int argc, char** argv) {
  CLI::App app("coordinator_load_bench: many workers against a real sf-coordinator process");
  std::string coordinator_bin = SF_COORDINATOR_BIN;
  int workers = 512, samples = 4, wait_ms = 10000;
  int64_t jobs = 5000;
  double idle_s = 60;
  app.add_option("--coordinator-bin", coordinator_bin, "sf-coordinator binary")
      ->capture_default_str();
  app.add_option("--workers", workers, "simulated workers")->capture_default_str();
  app.add_option("--idle-seconds", idle_s, "seconds of long polls on an empty queue")
      ->capture_default_str();
  app.add_option("--lease-wait-ms", wait_ms, "each Lease long poll's wait")->capture_default_str();
  app.add_option("--jobs", jobs, "jobs in the sweep drained afterwards")->capture_default_str();
  app.add_option("--samples", samples, "samples reported per job")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::string dir = absl::StrCat(std::filesystem::temp_directory_path().string(),
                                       "/sf_coordinator_load_bench_", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto coordinator =
      testing::Process::Start({coordinator_bin, "--db", dir + "/coordinator.db", "--listen",
                               "127.0.0.1:0", "--max-lease-wait", "30s", "--log-level", "warning"},
                              dir + "/coordinator.log");
  const int port = coordinator ? coordinator->ReadPort(absl::Seconds(30)) : -1;
  if (port <= 0) {
    std::fprintf(stderr, "sf-coordinator did not start; see %s/coordinator.log\n", dir.c_str());
    return 1;
  }
  const std::string address = absl::StrCat("127.0.0.1:", port);
  const pid_t pid = coordinator->pid();
  const ProcStats before = ReadProcStats(pid);

  Shared shared;
  std::vector<std::thread> threads;
  const absl::Time t0 = absl::Now();
  for (int i = 0; i < workers; ++i) {
    threads.emplace_back(RunWorker, i, address, jobs, samples, wait_ms, &shared);
  }
  while (shared.registered.load() + shared.errors.load() < workers &&
         absl::Now() - t0 < absl::Seconds(120)) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  const double join_s = absl::ToDoubleSeconds(absl::Now() - t0);

  // Idle: every worker long-polls an empty queue.
  ProcStats idle_peak;
  const double idle_cpu0 = ReadCpuSeconds(pid);
  const absl::Time idle_start = absl::Now();
  const absl::Time idle_end = absl::Now() + absl::Seconds(idle_s);
  while (absl::Now() < idle_end) {
    const ProcStats s = ReadProcStats(pid);
    idle_peak.rss_kb = std::max(idle_peak.rss_kb, s.rss_kb);
    idle_peak.threads = std::max(idle_peak.threads, s.threads);
    idle_peak.fds = std::max(idle_peak.fds, s.fds);
    absl::SleepFor(absl::Milliseconds(500));
  }
  const int64_t idle_polls = shared.idle_polls.load();
  const double idle_cpu_share =
      (ReadCpuSeconds(pid) - idle_cpu0) / absl::ToDoubleSeconds(absl::Now() - idle_start);

  // A sweep arrives; the workers drain it.
  auto user =
      v1::Coordinator::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  v1::SubmitSweepRequest submit;
  submit.set_sweep_name("load");
  for (int64_t i = 0; i < jobs; ++i) *submit.add_jobs() = LoadJob(i, samples);
  grpc::ClientContext sctx;
  v1::SubmitSweepResponse sresp;
  const double drain_cpu0 = ReadCpuSeconds(pid);
  const absl::Time d0 = absl::Now();
  if (!user->SubmitSweep(&sctx, submit, &sresp).ok()) {
    std::fprintf(stderr, "SubmitSweep failed\n");
    return 1;
  }
  shared.submitted_ns.store(absl::ToUnixNanos(absl::Now()));
  ProcStats busy_peak;
  while (shared.done.load() < jobs && absl::Now() - d0 < absl::Minutes(10)) {
    const ProcStats s = ReadProcStats(pid);
    busy_peak.rss_kb = std::max(busy_peak.rss_kb, s.rss_kb);
    busy_peak.threads = std::max(busy_peak.threads, s.threads);
    busy_peak.fds = std::max(busy_peak.fds, s.fds);
    absl::SleepFor(absl::Milliseconds(100));
  }
  const double drain_s = absl::ToDoubleSeconds(absl::Now() - d0);
  const ProcStats after = ReadProcStats(pid);
  const double drain_cpu_s = after.cpu_s - drain_cpu0;
  shared.stop.store(true);
  coordinator->Signal(SIGTERM);  // wakes the long polls still waiting
  for (auto& t : threads) t.join();
  coordinator->Wait();
  std::filesystem::remove_all(dir);

  absl::MutexLock lock(&shared.mu);
  std::printf("| figure | value |\n|---|---|\n");
  std::printf("| workers (one connection each) | %d |\n", workers);
  std::printf("| join: all registered after | %.2f s (register p50 / p99 %.1f / %.1f ms) |\n",
              join_s, Percentile(shared.register_ms, 0.5), Percentile(shared.register_ms, 0.99));
  std::printf("| coordinator before workers: RSS, threads, fds | %.1f MB, %lld, %lld |\n",
              before.rss_kb / 1024.0, static_cast<long long>(before.threads),
              static_cast<long long>(before.fds));
  std::printf(
      "| %.0f s of long polls (%d ms each) on an empty queue: peak RSS, threads, fds | "
      "%.1f MB, %lld, %lld (%lld polls answered empty) |\n",
      idle_s, wait_ms, idle_peak.rss_kb / 1024.0, static_cast<long long>(idle_peak.threads),
      static_cast<long long>(idle_peak.fds), static_cast<long long>(idle_polls));
  std::printf("| coordinator CPU while idle | %.1f %% of one core |\n", 100 * idle_cpu_share);
  std::printf("| submit + drain %lld jobs x %d samples: jobs/s | %.0f (%.2f s) |\n",
              static_cast<long long>(jobs), samples, static_cast<double>(shared.done) / drain_s,
              drain_s);
  std::printf("| coordinator CPU per job while draining | %.2f ms (%.2f s in all) |\n",
              1000 * drain_cpu_s / static_cast<double>(std::max<int64_t>(1, jobs)), drain_cpu_s);
  std::printf("| lease latency (asked after the sweep arrived), p50 / p99 | %.1f / %.1f ms |\n",
              Percentile(shared.lease_ms, 0.5), Percentile(shared.lease_ms, 0.99));
  std::printf("| while draining: peak RSS, threads, fds | %.1f MB, %lld, %lld |\n",
              busy_peak.rss_kb / 1024.0, static_cast<long long>(busy_peak.threads),
              static_cast<long long>(busy_peak.fds));
  std::printf("| coordinator peak RSS (VmHWM) | %.1f MB |\n", after.hwm_kb / 1024.0);
  std::printf("| call errors | %lld |\n", static_cast<long long>(shared.errors.load()));
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3) {
    std::printf("| load average at the end (1 / 5 min) | %.2f / %.2f |\n", load[0], load[1]);
  }
  return shared.done.load() >= jobs && shared.errors.load() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace sf

int main(int argc, char** argv) { return sf::Main(argc, argv); }
