// What every sfctl command that talks to a coordinator shares: the --coordinator and
// --token-file flags, the stub, per-call contexts, and naming a sweep by id or name.
#ifndef SF_CLI_REMOTE_H_
#define SF_CLI_REMOTE_H_

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tls.h"
#include "sf/v1/coordinator.grpc.pb.h"

namespace sf::cli {

struct RemoteFlags {
  std::string coordinator;  // "" = $SF_COORDINATOR or localhost:50051
  std::string token_file;
  double timeout_s = 30;
  TlsClientFiles tls;  // --tls-ca, --tls-cert, --tls-key; empty = plaintext
};

// Adds --coordinator, --token-file, --timeout and the TLS flags to `cmd`.
void AddRemoteFlags(CLI::App* cmd, RemoteFlags* flags);

class Remote {
 public:
  // Resolves the address, reads the token and the TLS files (NotFound/InvalidArgument
  // naming a bad file). Connecting is lazy: the first call reports Unavailable.
  static absl::StatusOr<std::unique_ptr<Remote>> Connect(const RemoteFlags& flags);
  Remote(std::shared_ptr<grpc::Channel> channel, std::string address, std::string token,
         absl::Duration timeout);

  v1::Coordinator::Stub& stub() { return *stub_; }
  const std::string& address() const { return address_; }
  // Token and deadline (the flag's timeout unless given) for one call.
  void Prepare(grpc::ClientContext* context, absl::Duration timeout = absl::ZeroDuration(),
               bool wait_for_ready = false) const;
  // A gRPC failure as a Status whose message names the coordinator and what to do.
  absl::Status Error(const grpc::Status& status, absl::string_view call) const;

  // The sweep named by `id_or_name` (digits = id). NotFound names it.
  absl::StatusOr<v1::Sweep> FindSweep(const std::string& id_or_name);

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  std::string address_;
  std::string token_;
  absl::Duration timeout_;
};

}  // namespace sf::cli

#endif  // SF_CLI_REMOTE_H_
