#include "coordinator/service.h"

#include <arpa/inet.h>
#include <grpc/grpc_security.h>
#include <grpcpp/security/auth_metadata_processor.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/logging.h"
#include "common/status.h"

namespace sf::coordinator {
namespace {

// Constant-time comparison, so that response timing does not leak the token.
bool TokenMatches(absl::string_view given, absl::string_view expected) {
  if (given.size() != expected.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < given.size(); ++i) diff |= given[i] ^ expected[i];
  return diff == 0;
}

grpc::Status CheckAuth(grpc::ServerContext* ctx, const std::string& token) {
  if (token.empty()) return grpc::Status::OK;
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "missing bearer token: pass the token file (--token-file)");
  }
  absl::string_view value(it->second.data(), it->second.size());
  if (!absl::ConsumePrefix(&value, "Bearer ") || !TokenMatches(value, token)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong bearer token");
  }
  return grpc::Status::OK;
}

template <typename T>
grpc::Status Reply(const absl::StatusOr<T>& result, T* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *result;
  return grpc::Status::OK;
}

// The first check of a call's bearer token, made when its headers arrive and before
// its message is read, so that an unauthenticated caller cannot make the server
// buffer a large request. Which service a call is for is not known here: a token of
// either role passes, and each handler then checks its own (CheckAuth).
class TokenGate {
 public:
  TokenGate(std::string worker_token, std::string user_token)
      : worker_token_(std::move(worker_token)), user_token_(std::move(user_token)) {}

  // Whether the gate is needed: with a role without a token, a call without one may
  // be that role's, and only its handler can tell.
  bool active() const { return !worker_token_.empty() && !user_token_.empty(); }

  // `authorization` is the header's value, or null when absent; `path` the call's
  // method ("/package.Service/Method"). The standard health service answers without a
  // token (probes present none; it reveals only whether the server is serving).
  grpc::Status Check(const absl::string_view* authorization, absl::string_view path) const {
    if (absl::StartsWith(path, "/grpc.health.v1.Health/")) return grpc::Status::OK;
    if (authorization == nullptr) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "missing bearer token: pass the token file (--token-file)");
    }
    absl::string_view value = *authorization;
    if (!absl::ConsumePrefix(&value, "Bearer ") ||
        !(TokenMatches(value, worker_token_) || TokenMatches(value, user_token_))) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong bearer token");
    }
    return grpc::Status::OK;
  }

 private:
  const std::string worker_token_;
  const std::string user_token_;
};

// The gate as gRPC's C++ metadata processor (TLS credentials take one).
class TokenGateProcessor final : public grpc::AuthMetadataProcessor {
 public:
  explicit TokenGateProcessor(std::shared_ptr<const TokenGate> gate) : gate_(std::move(gate)) {}
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext*, OutputMetadata*,
                       OutputMetadata*) override {
    auto path = auth_metadata.find(":path");
    const absl::string_view method =
        path == auth_metadata.end() ? ""
                                    : absl::string_view(path->second.data(), path->second.size());
    auto it = auth_metadata.find("authorization");
    if (it == auth_metadata.end()) return gate_->Check(nullptr, method);
    const absl::string_view value(it->second.data(), it->second.size());
    return gate_->Check(&value, method);
  }

 private:
  const std::shared_ptr<const TokenGate> gate_;
};

// Plaintext server credentials that run the gate. gRPC's InsecureServerCredentials()
// refuses a metadata processor; its core credentials take one.
class PlaintextCredentialsWithGate final : public grpc::ServerCredentials {
 public:
  explicit PlaintextCredentialsWithGate(std::shared_ptr<const TokenGate> gate)
      : gate_(std::move(gate)), creds_(grpc_insecure_server_credentials_create()) {
    // The core credentials outlive this object (the server keeps them): they own a
    // reference to the gate, released by `destroy`.
    grpc_auth_metadata_processor processor;
    processor.process = &Process;
    processor.destroy = [](void* state) {
      delete static_cast<std::shared_ptr<const TokenGate>*>(state);
    };
    processor.state = new std::shared_ptr<const TokenGate>(gate_);
    grpc_server_credentials_set_auth_metadata_processor(creds_, processor);
  }
  ~PlaintextCredentialsWithGate() override { grpc_server_credentials_release(creds_); }
  void SetAuthMetadataProcessor(const std::shared_ptr<grpc::AuthMetadataProcessor>&) override {}

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    return grpc_server_add_http2_port(server, addr.c_str(), creds_);
  }

  static void Process(void* state, grpc_auth_context*, const grpc_metadata* md, size_t num_md,
                      grpc_process_auth_metadata_done_cb done, void* user_data) {
    const TokenGate* gate = static_cast<std::shared_ptr<const TokenGate>*>(state)->get();
    std::optional<absl::string_view> authorization;
    absl::string_view path;
    for (size_t i = 0; i < num_md; ++i) {
      const absl::string_view key(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(md[i].key)),
                                  GRPC_SLICE_LENGTH(md[i].key));
      const absl::string_view value(
          reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(md[i].value)),
          GRPC_SLICE_LENGTH(md[i].value));
      if (key == "authorization") authorization.emplace(value);
      if (key == ":path") path = value;
    }
    const grpc::Status status = gate->Check(authorization ? &*authorization : nullptr, path);
    done(user_data, nullptr, 0, nullptr, 0, static_cast<grpc_status_code>(status.error_code()),
         status.ok() ? nullptr : status.error_message().c_str());
  }

  const std::shared_ptr<const TokenGate> gate_;
  grpc_server_credentials* const creds_;
};

#define SF_CHECK_AUTH(ctx, token)                     \
  do {                                                \
    grpc::Status auth_status = CheckAuth(ctx, token); \
    if (!auth_status.ok()) return auth_status;        \
  } while (false)

bool Finished(const v1::SweepEvent& e) {
  return e.kind() == v1::EVENT_KIND_SWEEP_FINISHED || e.kind() == v1::EVENT_KIND_SWEEP_CANCELLED;
}

}  // namespace

// ---------------------------------------------------------------- user-facing

grpc::Status CoordinatorService::SubmitSweep(grpc::ServerContext* ctx,
                                             const v1::SubmitSweepRequest* request,
                                             v1::SubmitSweepResponse* response) {
  SF_CHECK_AUTH(ctx, token_);
  auto result = scheduler_->SubmitSweep(*request);
  if (result.ok()) {
    SF_LOG(INFO) << "sweep '" << request->sweep_name() << "' (id " << result->sweep_id()
                 << "): " << result->jobs_total() << " jobs, " << result->jobs_queued()
                 << " queued, " << result->jobs_reused() << " reused";
  }
  return Reply(result, response);
}

grpc::Status CoordinatorService::GetSweep(grpc::ServerContext* ctx,
                                          const v1::GetSweepRequest* request, v1::Sweep* response) {
  SF_CHECK_AUTH(ctx, token_);
  return Reply(scheduler_->GetSweep(*request), response);
}

grpc::Status CoordinatorService::ListSweeps(grpc::ServerContext* ctx,
                                            const v1::ListSweepsRequest* request,
                                            v1::ListSweepsResponse* response) {
  SF_CHECK_AUTH(ctx, token_);
  return Reply(scheduler_->ListSweeps(*request), response);
}

grpc::Status CoordinatorService::WatchSweep(grpc::ServerContext* ctx,
                                            const v1::WatchSweepRequest* request,
                                            grpc::ServerWriter<v1::SweepEvent>* writer) {
  SF_CHECK_AUTH(ctx, token_);
  int64_t cursor = std::max<int64_t>(0, request->after_sequence());
  while (!ctx->IsCancelled()) {
    const int64_t newest = scheduler_->LastEventSequence();
    auto events = scheduler_->ReadEvents(request->sweep_id(), cursor, 500);
    if (!events.ok()) return ToGrpcStatus(events.status());
    bool finished = false;
    for (const v1::SweepEvent& e : *events) {
      if (!writer->Write(e)) return grpc::Status::OK;  // the client went away
      cursor = e.sequence();
      finished = Finished(e);
    }
    if (!events->empty()) {
      if (!finished) continue;
    }
    // Caught up: end when the sweep is over, otherwise wait for news.
    v1::GetSweepRequest get;
    get.set_id(request->sweep_id());
    auto sweep = scheduler_->GetSweep(get);
    if (!sweep.ok()) return ToGrpcStatus(sweep.status());
    if (sweep->state() != v1::SWEEP_STATE_RUNNING) {
      auto more = scheduler_->ReadEvents(request->sweep_id(), cursor, 1);
      if (more.ok() && more->empty()) return grpc::Status::OK;
      continue;
    }
    scheduler_->WaitForEvent(newest, absl::Seconds(1));
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled by the client");
}

grpc::Status CoordinatorService::CancelSweep(grpc::ServerContext* ctx,
                                             const v1::CancelSweepRequest* request,
                                             v1::CancelSweepResponse* response) {
  SF_CHECK_AUTH(ctx, token_);
  return Reply(scheduler_->CancelSweep(*request), response);
}

grpc::Status CoordinatorService::RetryFailed(grpc::ServerContext* ctx,
                                             const v1::RetryFailedRequest* request,
                                             v1::RetryFailedResponse* response) {
  SF_CHECK_AUTH(ctx, token_);
  return Reply(scheduler_->RetryFailed(*request), response);
}

grpc::Status CoordinatorService::Query(grpc::ServerContext* ctx, const v1::QueryRequest* request,
                                       grpc::ServerWriter<v1::QueryResponse>* writer) {
  SF_CHECK_AUTH(ctx, token_);
  QueryLimits limits = limits_;
  if (request->max_rows() > 0) limits.max_rows = std::min(limits.max_rows, request->max_rows());
  if (request->timeout_ms() > 0) {
    limits.timeout = std::min(limits.timeout, absl::Milliseconds(request->timeout_ms()));
  }
  // The call's own deadline bounds the query too.
  const absl::Duration left = absl::FromChrono(ctx->deadline()) - absl::Now();
  if (left < limits.timeout) limits.timeout = std::max(left, absl::ZeroDuration());
  return ToGrpcStatus(
      RunReadOnlyQuery(scheduler_->db_path(), request->sql(), limits,
                       [writer](v1::QueryResponse& r) { return writer->Write(r); }));
}

grpc::Status CoordinatorService::ListWorkers(grpc::ServerContext* ctx,
                                             const v1::ListWorkersRequest* request,
                                             v1::ListWorkersResponse* response) {
  SF_CHECK_AUTH(ctx, token_);
  return Reply(scheduler_->ListWorkers(*request), response);
}

grpc::Status CoordinatorService::Results(grpc::ServerContext* ctx,
                                         const v1::ResultsRequest* request,
                                         grpc::ServerWriter<v1::ResultsResponse>* writer) {
  SF_CHECK_AUTH(ctx, token_);
  return ToGrpcStatus(
      scheduler_->Results(*request, [writer](v1::ResultsResponse& r) { return writer->Write(r); }));
}

// ---------------------------------------------------------------- worker-facing

grpc::Status WorkerServiceImpl::RegisterWorker(grpc::ServerContext* ctx,
                                               const v1::RegisterWorkerRequest* request,
                                               v1::RegisterWorkerResponse* response) {
  SF_CHECK_AUTH(ctx, token_);
  auto result = scheduler_->RegisterWorker(*request);
  if (result.ok()) {
    SF_LOG(INFO) << "worker " << request->worker_id() << " registered (" << request->devices_size()
                 << " devices)";
  }
  return Reply(result, response);
}

grpc::Status WorkerServiceImpl::Lease(grpc::ServerContext* ctx, const v1::LeaseRequest* request,
                                      v1::LeaseResponse* response) {
  SF_CHECK_AUTH(ctx, token_);
  v1::LeaseRequest bounded = *request;
  // Answer before the client's deadline so that an empty poll is not an error.
  const int64_t left_ms =
      absl::ToInt64Milliseconds(absl::FromChrono(ctx->deadline()) - absl::Now()) - 500;
  bounded.set_wait_ms(std::max<int64_t>(0, std::min(request->wait_ms(), left_ms)));
  // A worker that gave up on this poll (it is stopping or gone) would never receive a
  // job granted to it, and nobody would run the job until its lease expired.
  absl::StatusOr<v1::LeaseResponse> result =
      scheduler_->Lease(bounded, [ctx] { return ctx->IsCancelled(); });
  if (result.ok() && result->has_lease() && ctx->IsCancelled()) {
    // Cancelled between the poll's last look and its answer: give the leases back.
    std::vector<const v1::Lease*> granted = {&result->lease()};
    for (const v1::Lease& more : result->more_leases()) granted.push_back(&more);
    for (const v1::Lease* lease : granted) {
      v1::FailRequest release;
      release.set_lease_token(lease->lease_token());
      release.set_preempted(true);
      release.set_error("the worker's Lease call was cancelled before the lease reached it");
      (void)scheduler_->Fail(release);
    }
    return grpc::Status(grpc::StatusCode::CANCELLED, "Lease cancelled by the worker");
  }
  return Reply(result, response);
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext* ctx,
                                          const v1::HeartbeatRequest* request,
                                          v1::HeartbeatResponse* response) {
  SF_CHECK_AUTH(ctx, token_);
  return Reply(scheduler_->Heartbeat(*request), response);
}

grpc::Status WorkerServiceImpl::ReportSamples(grpc::ServerContext* ctx,
                                              const v1::ReportSamplesRequest* request,
                                              v1::ReportSamplesResponse* response) {
  SF_CHECK_AUTH(ctx, token_);
  return Reply(scheduler_->ReportSamples(*request), response);
}

grpc::Status WorkerServiceImpl::Complete(grpc::ServerContext* ctx,
                                         const v1::CompleteRequest* request,
                                         v1::CompleteResponse* response) {
  SF_CHECK_AUTH(ctx, token_);
  return Reply(scheduler_->Complete(*request), response);
}

grpc::Status WorkerServiceImpl::Fail(grpc::ServerContext* ctx, const v1::FailRequest* request,
                                     v1::FailResponse* response) {
  SF_CHECK_AUTH(ctx, token_);
  return Reply(scheduler_->Fail(*request), response);
}

// ---------------------------------------------------------------- server

bool IsLoopbackAddress(const std::string& listen) {
  absl::string_view host(listen);
  const size_t colon = host.rfind(':');
  if (colon != absl::string_view::npos) host = host.substr(0, colon);
  if (host == "localhost" || host == "[::1]") return true;
  // Only a numeric IPv4 address in 127.0.0.0/8: a host name that starts with "127."
  // is resolved by DNS and may be anywhere.
  in_addr address;
  return inet_pton(AF_INET, std::string(host).c_str(), &address) == 1 &&
         (ntohl(address.s_addr) >> 24) == 127;
}

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    Scheduler* scheduler, const ServerOptions& options) {
  if ((options.worker_token.empty() || options.user_token.empty()) &&
      !IsLoopbackAddress(options.listen)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to listen on ", options.listen,
        " without --worker-token and --user-token: give both token files, or listen on "
        "127.0.0.1"));
  }
  SF_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                      MakeServerCredentials(options.tls));
  auto gate = std::make_shared<const TokenGate>(options.worker_token, options.user_token);
  if (gate->active()) {
    if (options.tls.enabled()) {
      credentials->SetAuthMetadataProcessor(std::make_shared<TokenGateProcessor>(gate));
    } else {
      credentials = std::make_shared<PlaintextCredentialsWithGate>(gate);
    }
  }
  std::unique_ptr<CoordinatorServer> server(new CoordinatorServer());
  server->scheduler_ = scheduler;
  server->user_service_ =
      std::make_unique<CoordinatorService>(scheduler, options.user_token, options.query_limits);
  server->worker_service_ = std::make_unique<WorkerServiceImpl>(scheduler, options.worker_token);
  // The standard health service (grpc.health.v1) on every server built from here on.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, credentials, &server->port_);
  builder.RegisterService(server->user_service_.get());
  builder.RegisterService(server->worker_service_.get());
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
                              options.max_pollers);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  // Keepalive: detect dead peers under long polls and streams; allow clients to ping.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  // gRPC sets SO_REUSEPORT by default: a second coordinator on a port in use would then
  // start, and clients' calls would split between two databases. Fail to bind instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen, ": address in use or invalid"));
  }
  if (!options.health_listen.empty()) {
    grpc::ServerBuilder health;
    health.AddListeningPort(options.health_listen, grpc::InsecureServerCredentials(),
                            &server->health_port_);
    server->health_server_rest_ = std::make_unique<grpc::CallbackGenericService>();
    health.RegisterCallbackGenericService(server->health_server_rest_.get());
    server->health_server_ = health.BuildAndStart();
    if (server->health_server_ == nullptr || server->health_port_ == 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", options.health_listen,
                                                 " (--health-listen): address in use or invalid"));
    }
  }
  return server;
}

void CoordinatorServer::Shutdown(absl::Duration grace) {
  // A server that failed to bind was never built: there is nothing to stop, and the
  // scheduler stays usable.
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  scheduler_->Shutdown();
  // Probes see NOT_SERVING while calls drain.
  for (grpc::Server* s : {server_.get(), health_server_.get()}) {
    if (s != nullptr && s->GetHealthCheckService() != nullptr) {
      s->GetHealthCheckService()->Shutdown();
    }
  }
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  if (health_server_ != nullptr) health_server_->Shutdown(absl::ToChronoTime(absl::Now()));
}

void CoordinatorServer::Wait() {
  if (server_ != nullptr) server_->Wait();
  if (health_server_ != nullptr) health_server_->Wait();
}

CoordinatorServer::~CoordinatorServer() {
  Shutdown(absl::ZeroDuration());
  Wait();
}

}  // namespace sf::coordinator
