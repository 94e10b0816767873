#include "cli/remote.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "coordinator/client.h"

namespace sf::cli {

void AddRemoteFlags(CLI::App* cmd, RemoteFlags* flags) {
  cmd->add_option("--coordinator", flags->coordinator,
                  "coordinator address host:port (default: $SF_COORDINATOR, else "
                  "localhost:50051)");
  cmd->add_option("--token-file", flags->token_file,
                  "file holding the bearer token the coordinator expects from users");
  cmd->add_option("--timeout", flags->timeout_s, "seconds to wait for each call")
      ->capture_default_str();
  cmd->add_option("--tls-ca", flags->tls.ca,
                  "PEM CA bundle that signed the coordinator's certificate: connect with TLS");
  cmd->add_option("--tls-cert", flags->tls.cert, "PEM client certificate, for mutual TLS");
  cmd->add_option("--tls-key", flags->tls.key, "PEM private key of --tls-cert");
}

absl::StatusOr<std::unique_ptr<Remote>> Remote::Connect(const RemoteFlags& flags) {
  ConnectionOptions options;
  options.address = ResolveCoordinatorAddress(flags.coordinator);
  SF_ASSIGN_OR_RETURN(options.token, ReadTokenFile(flags.token_file));
  SF_ASSIGN_OR_RETURN(options.credentials, MakeChannelCredentials(flags.tls));
  return std::make_unique<Remote>(MakeCoordinatorChannel(options), options.address, options.token,
                                  absl::Seconds(flags.timeout_s));
}

Remote::Remote(std::shared_ptr<grpc::Channel> channel, std::string address, std::string token,
               absl::Duration timeout)
    : channel_(std::move(channel)),
      stub_(v1::Coordinator::NewStub(channel_)),
      address_(std::move(address)),
      token_(std::move(token)),
      timeout_(timeout) {}

void Remote::Prepare(grpc::ClientContext* context, absl::Duration timeout,
                     bool wait_for_ready) const {
  PrepareContext(context, token_, timeout > absl::ZeroDuration() ? timeout : timeout_,
                 wait_for_ready);
}

absl::Status Remote::Error(const grpc::Status& status, absl::string_view call) const {
  absl::Status s = FromGrpcStatus(status, call);
  if (absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)) {
    return absl::Status(s.code(),
                        absl::StrCat("coordinator at ", address_, " not reachable (", s.message(),
                                     "); is sf-coordinator running? Set "
                                     "--coordinator or SF_COORDINATOR, and --tls-ca if it "
                                     "serves TLS"));
  }
  // PERMISSION_DENIED is a refused action (a write in a query), not a missing token.
  if (absl::IsUnauthenticated(s) && !absl::StrContains(s.message(), "--token-file")) {
    return absl::Status(s.code(), absl::StrCat(s.message(), " (pass --token-file)"));
  }
  return s;
}

absl::StatusOr<v1::Sweep> Remote::FindSweep(const std::string& id_or_name) {
  v1::GetSweepRequest request;
  int64_t id = 0;
  if (absl::SimpleAtoi(id_or_name, &id)) {
    request.set_id(id);
  } else {
    request.set_name(id_or_name);
  }
  grpc::ClientContext context;
  Prepare(&context);
  v1::Sweep sweep;
  grpc::Status status = stub_->GetSweep(&context, request, &sweep);
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
      return absl::NotFoundError(
          absl::StrCat("no sweep '", id_or_name, "' on the coordinator; 'sfctl list' shows them"));
    }
    return Error(status, "GetSweep");
  }
  return sweep;
}

}  // namespace sf::cli
