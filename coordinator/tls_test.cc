// TLS on the coordinator's channel: a real handshake over loopback with the test-only
// CA and certificates in tests/data/tls (make_test_certs.sh made them), mutual TLS, a
// plaintext client refused by a TLS server, and errors that name the bad file.
#include "common/tls.h"

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <fstream>

#include "common/clock.h"
#include "common/testing/status_matchers.h"
#include "coordinator/health_check.h"
#include "coordinator/scheduler.h"
#include "coordinator/service.h"
#include "coordinator/testing/test_jobs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf::coordinator {
namespace {

using ::sf::testing::IsOk;
using ::sf::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string Data(const std::string& name) { return std::string(SF_TLS_TEST_DATA "/") + name; }

class TlsTest : public ::testing::Test {
 protected:
  void Start(TlsServerFiles tls, std::string worker_token = "", std::string user_token = "") {
    auto s = Scheduler::Open(db_.path(), &RealClock());
    ASSERT_THAT(s.status(), IsOk());
    scheduler_ = std::move(*s);
    ServerOptions options;
    options.tls = std::move(tls);
    options.worker_token = std::move(worker_token);
    options.user_token = std::move(user_token);
    auto server = CoordinatorServer::Start(scheduler_.get(), options);
    ASSERT_THAT(server.status(), IsOk());
    server_ = std::move(*server);
  }

  void TearDown() override {
    server_.reset();
    scheduler_.reset();
  }

  // One ListSweeps call through `credentials`; the deadline only guards against a hang.
  grpc::Status Call(std::shared_ptr<grpc::ChannelCredentials> credentials,
                    const std::string& token = "") {
    auto channel =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()), std::move(credentials));
    auto stub = v1::Coordinator::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::ListSweepsResponse response;
    return stub->ListSweeps(&context, v1::ListSweepsRequest(), &response);
  }

  std::shared_ptr<grpc::ChannelCredentials> Client(TlsClientFiles files) {
    auto credentials = MakeChannelCredentials(files);
    EXPECT_THAT(credentials.status(), IsOk());
    return credentials.ok() ? *credentials : nullptr;
  }

  testing::TempDb db_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<CoordinatorServer> server_;
};

TEST_F(TlsTest, TlsServer_ClientTrustingItsCa_Succeeds) {
  Start({.cert = Data("server.pem"), .key = Data("server.key")});
  grpc::Status status = Call(Client({.ca = Data("ca.pem")}));
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(TlsTest, TlsServerWithTokens_TokenCheckedBeforeTheCall) {
  Start({.cert = Data("server.pem"), .key = Data("server.key")}, "wtok", "utok");
  EXPECT_TRUE(Call(Client({.ca = Data("ca.pem")}), "utok").ok());
  EXPECT_EQ(Call(Client({.ca = Data("ca.pem")})).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Call(Client({.ca = Data("ca.pem")}), "nope").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // Health probes present no token.
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                     Client({.ca = Data("ca.pem")}));
  EXPECT_THAT(CheckHealth(channel, "", absl::Seconds(10)), IsOk());
}

TEST_F(TlsTest, TlsServer_PlaintextClient_IsRefused) {
  Start({.cert = Data("server.pem"), .key = Data("server.key")});
  grpc::Status status = Call(grpc::InsecureChannelCredentials());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, PlaintextServer_TlsClient_IsRefused) {
  Start({});
  grpc::Status status = Call(Client({.ca = Data("ca.pem")}));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, MutualTls_OnlyAClientWithACertificateGetsIn) {
  Start({.cert = Data("server.pem"), .key = Data("server.key"), .client_ca = Data("ca.pem")});
  grpc::Status without = Call(Client({.ca = Data("ca.pem")}));
  EXPECT_EQ(without.error_code(), grpc::StatusCode::UNAVAILABLE) << without.error_message();
  grpc::Status with =
      Call(Client({.ca = Data("ca.pem"), .cert = Data("client.pem"), .key = Data("client.key")}));
  EXPECT_TRUE(with.ok()) << with.error_message();
}

TEST(TlsFilesTest, BadFiles_ErrorsNameTheFile) {
  testing::TempDb scratch;
  const std::string garbage = scratch.path() + ".pem";
  std::ofstream(garbage) << "not a certificate\n";
  EXPECT_THAT(
      MakeServerCredentials({.cert = Data("nope.pem"), .key = Data("server.key")}),
      StatusIs(absl::StatusCode::kNotFound, AllOf(HasSubstr("--tls-cert"), HasSubstr("nope.pem"))));
  EXPECT_THAT(MakeServerCredentials({.cert = garbage, .key = Data("server.key")}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(garbage), HasSubstr("no valid PEM certificate"))));
  EXPECT_THAT(MakeServerCredentials({.cert = Data("server.pem"), .key = garbage}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("--tls-key"), HasSubstr(garbage))));
  EXPECT_THAT(MakeServerCredentials({.cert = Data("server.pem"), .key = Data("client.key")}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("client.key"), HasSubstr("not the private key"))));
  EXPECT_THAT(MakeServerCredentials({.cert = Data("server.pem")}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--tls-key")));
  EXPECT_THAT(MakeServerCredentials({.client_ca = Data("ca.pem")}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--tls-cert")));
  EXPECT_THAT(MakeChannelCredentials({.ca = garbage}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("--tls-ca"), HasSubstr(garbage))));
  EXPECT_THAT(MakeChannelCredentials({.cert = Data("client.pem"), .key = Data("client.key")}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--tls-ca")));
  EXPECT_THAT(MakeChannelCredentials({.ca = Data("ca.pem"), .cert = Data("client.pem")}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--tls-key")));
  std::remove(garbage.c_str());
}

}  // namespace
}  // namespace sf::coordinator
