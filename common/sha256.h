// SHA-256 for job keys and model identities, computed by OpenSSL's libcrypto (already
// linked for TLS), so that keys are the same on every host that builds the project.
#ifndef SF_COMMON_SHA256_H_
#define SF_COMMON_SHA256_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace sf {

// Incremental hasher: Update() any number of times, then Finish() once. Aborts (a
// programmer or installation error, not bad input) if libcrypto cannot hash.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(absl::string_view data);
  // Returns the 32-byte digest. REQUIRES: called at most once.
  std::array<uint8_t, 32> Finish();

 private:
  struct Context;  // OpenSSL's EVP_MD_CTX, kept out of this header
  std::unique_ptr<Context> context_;
};

// Lower-case hex SHA-256 of `data` (64 characters).
std::string Sha256Hex(absl::string_view data);

// Lower-case hex of a digest.
std::string DigestHex(const std::array<uint8_t, 32>& digest);

}  // namespace sf

#endif  // SF_COMMON_SHA256_H_
