// The client side of the standard gRPC health protocol (grpc.health.v1.Health/Check)
// against a coordinator: what `sf-worker --health` asks before a site starts workers, and
// what probes that cannot speak TLS or carry a token are pointed at (sf-coordinator
// --health-listen).
#ifndef SF_COORDINATOR_HEALTH_CHECK_H_
#define SF_COORDINATOR_HEALTH_CHECK_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace sf {

// Asks `channel`'s server whether `service` ("" = the server as a whole) is serving.
// Waits up to `timeout` for a server that is down or starting. OK when it answers
// SERVING; Unavailable when it answers anything else (the status is named);
// DeadlineExceeded when it could not be reached in time; the RPC's own error otherwise
// (e.g. Unimplemented from a server without the health service).
absl::Status CheckHealth(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
                         absl::Duration timeout);

}  // namespace sf

#endif  // SF_COORDINATOR_HEALTH_CHECK_H_
