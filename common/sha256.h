// SHA-256 (FIPS 180-4) for job keys and model identities: small and dependency free,
// so that keys are computed the same way on every host that builds the project.
#ifndef SF_COMMON_SHA256_H_
#define SF_COMMON_SHA256_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace sf {

// Incremental hasher: Update() any number of times, then Finish() once.
class Sha256 {
 public:
  Sha256();
  void Update(absl::string_view data);
  // Returns the 32-byte digest. REQUIRES: called at most once.
  std::array<uint8_t, 32> Finish();

 private:
  void Compress(const uint8_t* block);

  uint32_t state_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// Lower-case hex SHA-256 of `data` (64 characters).
std::string Sha256Hex(absl::string_view data);

// Lower-case hex of a digest.
std::string DigestHex(const std::array<uint8_t, 32>& digest);

}  // namespace sf

#endif  // SF_COMMON_SHA256_H_
