// Optional TLS for the coordinator's gRPC channel: builds server and channel
// credentials from PEM files, checked up front so a bad file fails at start-up with its
// name (not at the first handshake). Shared by sf-coordinator, sf-worker and sfctl.
#ifndef SF_COMMON_TLS_H_
#define SF_COMMON_TLS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace sf {

// sf-coordinator's side. cert and key empty = plaintext; client_ca set = mutual TLS
// (every client must present a certificate signed by that CA).
struct TlsServerFiles {
  std::string cert;       // --tls-cert: PEM certificate chain
  std::string key;        // --tls-key: PEM private key of the first certificate
  std::string client_ca;  // --tls-client-ca: PEM CA bundle for client certificates
  bool enabled() const { return !cert.empty() || !key.empty() || !client_ca.empty(); }
};

// sf-worker's and sfctl's side. All empty = plaintext. ca set = TLS, trusting only that
// CA; cert + key add a client certificate (mutual TLS).
struct TlsClientFiles {
  std::string ca;    // --tls-ca: PEM CA bundle that signed the coordinator's certificate
  std::string cert;  // --tls-cert: PEM client certificate chain (mutual TLS)
  std::string key;   // --tls-key: PEM private key of the client certificate
  bool enabled() const { return !ca.empty() || !cert.empty() || !key.empty(); }
};

// Both builders initialize gRPC, which starts its threads: a process that takes signals
// with sigwait must block them before calling these.

// Insecure credentials when `files` is empty. InvalidArgument when cert or key is given
// without the other, or client_ca without both; NotFound/InvalidArgument naming the file
// when one cannot be read, holds no valid PEM item, or the key does not match the
// certificate.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsServerFiles& files);

// Same checks for the client side; TLS without ca (cert/key only) is refused, as it
// would trust any public CA instead of the coordinator's.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsClientFiles& files);

}  // namespace sf

#endif  // SF_COMMON_TLS_H_
