#include "common/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace sf {
namespace {

// OpenSSL's most recent error, for messages; clears the queue.
std::string OpenSslError() {
  unsigned long code = ERR_get_error();  // NOLINT(runtime/int): OpenSSL's type
  ERR_clear_error();
  if (code == 0) return "no PEM item found";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", flag, " file ", path, ": check the path and permissions"));
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyDeleter>;

BioPtr MemBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// The first certificate of a PEM bundle (gRPC reads the rest).
absl::StatusOr<X509Ptr> ParseCertificates(const std::string& pem, const std::string& path,
                                          const char* flag) {
  ERR_clear_error();
  BioPtr bio = MemBio(pem);
  X509Ptr first(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (first == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " file ", path, " holds no valid PEM certificate (", OpenSslError(),
                     "): give a file with -----BEGIN CERTIFICATE----- blocks"));
  }
  return first;
}

absl::StatusOr<KeyPtr> ParseKey(const std::string& pem, const std::string& path, const char* flag) {
  ERR_clear_error();
  BioPtr bio = MemBio(pem);
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " file ", path, " holds no valid unencrypted PEM private key (",
                     OpenSslError(), "): give a file with a -----BEGIN PRIVATE KEY----- block"));
  }
  return key;
}

struct KeyCertPair {
  std::string cert;
  std::string key;
};

// Reads and checks a certificate chain and its private key.
absl::StatusOr<KeyCertPair> ReadPair(const std::string& cert_path, const std::string& key_path,
                                     const char* cert_flag, const char* key_flag) {
  if (cert_path.empty() != key_path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("give both ", cert_flag, " and ", key_flag,
                                                   " (a certificate needs its private key)"));
  }
  KeyCertPair pair;
  SF_ASSIGN_OR_RETURN(pair.cert, ReadPem(cert_path, cert_flag));
  SF_ASSIGN_OR_RETURN(pair.key, ReadPem(key_path, key_flag));
  SF_ASSIGN_OR_RETURN(X509Ptr cert, ParseCertificates(pair.cert, cert_path, cert_flag));
  SF_ASSIGN_OR_RETURN(KeyPtr key, ParseKey(pair.key, key_path, key_flag));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        key_flag, " file ", key_path, " is not the private key of the certificate in ", cert_path));
  }
  return pair;
}

absl::StatusOr<std::string> ReadCa(const std::string& path, const char* flag) {
  SF_ASSIGN_OR_RETURN(std::string pem, ReadPem(path, flag));
  SF_RETURN_IF_ERROR(ParseCertificates(pem, path, flag).status());
  return pem;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsServerFiles& files) {
  if (!files.enabled()) return grpc::InsecureServerCredentials();
  if (files.cert.empty() || files.key.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both --tls-cert and --tls-key (--tls-client-ca only adds client checks)");
  }
  SF_ASSIGN_OR_RETURN(KeyCertPair pair, ReadPair(files.cert, files.key, "--tls-cert", "--tls-key"));
  grpc::SslServerCredentialsOptions options(
      files.client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                              : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!files.client_ca.empty()) {
    SF_ASSIGN_OR_RETURN(options.pem_root_certs, ReadCa(files.client_ca, "--tls-client-ca"));
  }
  options.pem_key_cert_pairs.push_back({pair.key, pair.cert});
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsClientFiles& files) {
  if (!files.enabled()) return grpc::InsecureChannelCredentials();
  if (files.ca.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs --tls-ca (the CA that signed the coordinator's certificate); --tls-cert "
        "and --tls-key only add a client certificate");
  }
  grpc::SslCredentialsOptions options;
  SF_ASSIGN_OR_RETURN(options.pem_root_certs, ReadCa(files.ca, "--tls-ca"));
  if (!files.cert.empty() || !files.key.empty()) {
    SF_ASSIGN_OR_RETURN(KeyCertPair pair,
                        ReadPair(files.cert, files.key, "--tls-cert", "--tls-key"));
    options.pem_cert_chain = std::move(pair.cert);
    options.pem_private_key = std::move(pair.key);
  }
  return grpc::SslCredentials(options);
}

}  // namespace sf
