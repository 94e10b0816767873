// absl::Status <-> grpc::Status at the service edge. absl and gRPC share their status
// codes, so the conversion keeps code and message; this is the only place that does it.
#ifndef SF_PROTO_GRPC_STATUS_H_
#define SF_PROTO_GRPC_STATUS_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace sf {

// For a service's reply: same code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

// For a client: same code; the message is prefixed with `call` ("Lease: ...") when
// `call` is not empty.
absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view call = "");

}  // namespace sf

#endif  // SF_PROTO_GRPC_STATUS_H_
