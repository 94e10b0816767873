#include "common/sha256.h"

#include <openssl/evp.h>

#include "common/logging.h"

namespace sf {

struct Sha256::Context {
  EVP_MD_CTX* md = nullptr;
};

Sha256::Sha256() : context_(std::make_unique<Context>()) {
  context_->md = EVP_MD_CTX_new();
  SF_CHECK(context_->md != nullptr) << "OpenSSL: EVP_MD_CTX_new failed";
  SF_CHECK(EVP_DigestInit_ex(context_->md, EVP_sha256(), nullptr) == 1)
      << "OpenSSL: SHA-256 is not available";
}

Sha256::~Sha256() { EVP_MD_CTX_free(context_->md); }

void Sha256::Update(absl::string_view data) {
  if (data.empty()) return;
  SF_CHECK(EVP_DigestUpdate(context_->md, data.data(), data.size()) == 1)
      << "OpenSSL: SHA-256 update failed";
}

std::array<uint8_t, 32> Sha256::Finish() {
  std::array<uint8_t, 32> digest{};
  unsigned int length = 0;
  SF_CHECK(EVP_DigestFinal_ex(context_->md, digest.data(), &length) == 1 && length == 32)
      << "OpenSSL: SHA-256 final failed";
  return digest;
}

std::string Sha256Hex(absl::string_view data) {
  Sha256 hash;
  hash.Update(data);
  return DigestHex(hash.Finish());
}

std::string DigestHex(const std::array<uint8_t, 32>& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (uint8_t b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

}  // namespace sf
