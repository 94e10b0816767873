// The coordinator client library (sf_coordinator_client): connecting to a coordinator
// with the channel arguments (keepalive, reconnect backoff), the bearer token every call
// carries, deadlines, and the one status conversion (proto/grpc_status.h). Shared by
// sf-worker and sfctl; knows nothing of either.
#ifndef SF_COORDINATOR_CLIENT_H_
#define SF_COORDINATOR_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tls.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc_status.h"

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

}  // namespace sf

#endif  // SF_COORDINATOR_CLIENT_H_
