// Connecting to the coordinator: channel arguments (keepalive), the bearer token every
// call carries, deadlines, and gRPC <-> absl status conversion. Shared by sf-worker and
// sfctl.
#ifndef SF_WORKER_RPC_H_
#define SF_WORKER_RPC_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tls.h"
#include "grpcpp/grpcpp.h"

namespace sf {

inline constexpr char kDefaultCoordinatorAddress[] = "localhost:50051";

struct ConnectionOptions {
  std::string address = kDefaultCoordinatorAddress;  // host:port
  std::string token;  // bearer token sent with every call ("" = none)
  // From MakeChannelCredentials (common/tls.h); null = plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// The coordinator address: `flag` when set, else $SF_COORDINATOR, else the default.
std::string ResolveCoordinatorAddress(const std::string& flag);

// Reads a bearer token from `path` (surrounding whitespace removed). "" gives "".
// NotFound/InvalidArgument name the file when it is missing or empty.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// A channel (TLS when options.credentials says so, else plaintext) with keepalive
// pings, so a dead coordinator is noticed while a long poll or stream is open.
std::shared_ptr<grpc::Channel> MakeCoordinatorChannel(const ConnectionOptions& options);

// Prepares `context` for one call: bearer token and a deadline `timeout` from now;
// `wait_for_ready` makes the call wait (up to the deadline) for a coordinator that is
// down or restarting instead of failing at once.
void PrepareContext(grpc::ClientContext* context, const std::string& token, absl::Duration timeout,
                    bool wait_for_ready);

// gRPC and absl share their codes; the message names the call.
absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view call);

}  // namespace sf

#endif  // SF_WORKER_RPC_H_
