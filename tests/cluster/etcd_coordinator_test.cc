// The etcd client's failures: an etcd that cannot be reached or does not
// answer costs a bounded time and says which endpoint and call failed;
// bad options are refused before any call.
#include "broker/src/cluster/etcd_coordinator.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/src/cluster/etcd_http.h"
#include "tests/cluster/etcd_server.h"

namespace txmq::cluster {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<Coordinator> Open(std::vector<std::string> endpoints) {
  EtcdOptions options;
  options.endpoints = std::move(endpoints);
  options.connect_timeout = 500ms;
  options.request_timeout = 800ms;
  auto c = OpenEtcdCoordinator(options);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

template <typename F>
std::chrono::milliseconds Timed(F&& f) {
  auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

TEST(EtcdCoordinator, AClosedPortIsUnavailableAndNamesTheEndpoint) {
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(testing::FreeLoopbackPort());
  auto c = Open({endpoint});
  ASSERT_TRUE(c);
  std::vector<Status> failures;
  auto took = Timed([&] {
    failures.push_back(c->Get("/k").status());
    failures.push_back(c->GetPrefix("/k").status());
    failures.push_back(c->Put("/k", "v").status());
    failures.push_back(c->Delete("/k").status());
    failures.push_back(
        c->Commit(Txn{{Compare::Absent("/k")}, {WriteOp::Put("/k", "v")}, {}}).status());
    failures.push_back(c->GrantLease(5s).status());
    failures.push_back(c->KeepAlive(7).status());
    failures.push_back(c->RevokeLease(7));
  });
  for (const Status& s : failures) {
    EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
    EXPECT_NE(s.message().find(endpoint), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find("cannot connect"), std::string::npos) << s.ToString();
  }
  EXPECT_LT(took, 8 * 800ms);
}

// A peer that accepts the connection and never answers: the call gives up
// at request_timeout, and says the outcome is unknown.
TEST(EtcdCoordinator, ASilentServerTimesOutWithinTheRequestTimeout) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 8), 0);  // the kernel completes handshakes; nobody reads
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto c = Open({endpoint});
  ASSERT_TRUE(c);
  Status s;
  auto took = Timed([&] {
    s = c->Commit(Txn{{Compare::Absent("/k")}, {WriteOp::Put("/k", "v")}, {}}).status();
  });
  close(fd);
  EXPECT_EQ(s.code(), StatusCode::kTimeout) << s.ToString();
  EXPECT_NE(s.message().find(endpoint), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("outcome is unknown"), std::string::npos) << s.ToString();
  EXPECT_GE(took, 700ms);
  EXPECT_LT(took, 3s);
}

std::string ClosedEndpoint() {
  return "http://127.0.0.1:" + std::to_string(testing::FreeLoopbackPort());
}

// Every member is tried once within a call when none can be connected to;
// the error names the last one tried.
TEST(EtcdCoordinator, MembersThatCannotBeReachedAreAllTriedOnce) {
  const std::string a = ClosedEndpoint(), b = ClosedEndpoint();
  auto c = Open({a, b});
  ASSERT_TRUE(c);
  Status s = c->Get("/k").status();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find(b), std::string::npos) << s.ToString();
}

// A member that was reached and did not answer in time: the call fails
// (its outcome is unknown, it is not sent again) and the next call starts
// at the next member.
TEST(EtcdCoordinator, AMemberThatTimedOutIsNotAskedAgainFirst) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 8), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string silent = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto etcd = testing::EtcdServer::Start();
  ASSERT_TRUE(etcd);
  auto c = Open({silent, etcd->endpoint()});
  ASSERT_TRUE(c);
  Status first = c->Put("/k", "v").status();
  EXPECT_EQ(first.code(), StatusCode::kTimeout) << first.ToString();
  EXPECT_NE(first.message().find(silent), std::string::npos) << first.ToString();
  auto got = c->Get("/k");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  // Not sent to the live member after the timeout: nothing was written.
  EXPECT_TRUE(got->kvs.empty());
  close(fd);
}

// A member that cannot be connected to is skipped within the call.
TEST(EtcdCoordinator, ADeadMemberIsSkippedForTheNext) {
  auto etcd = testing::EtcdServer::Start();
  ASSERT_TRUE(etcd);
  auto c = Open({ClosedEndpoint(), etcd->endpoint()});
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Put("/k", "v").ok());
  auto got = c->Get("/k");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, "v");
}

TEST(EtcdCoordinator, BadOptionsAreRefusedUpFront) {
  EtcdOptions options;
  options.endpoints = {"127.0.0.1:2379"};
  EXPECT_EQ(OpenEtcdCoordinator(options).status().code(), StatusCode::kInvalidArgument);
  options.endpoints = {"https://127.0.0.1:2379"};
  EXPECT_EQ(OpenEtcdCoordinator(options).status().code(), StatusCode::kInvalidArgument);
  options.endpoints = {"http://127.0.0.1:2379/"};
  EXPECT_EQ(OpenEtcdCoordinator(options).status().code(), StatusCode::kInvalidArgument);
  options.endpoints = {};
  EXPECT_EQ(OpenEtcdCoordinator(options).status().code(), StatusCode::kInvalidArgument);
  options.endpoints = {"http://127.0.0.1:2379", "http://127.0.0.1:2380/"};
  EXPECT_EQ(OpenEtcdCoordinator(options).status().code(), StatusCode::kInvalidArgument);
  options.endpoints = {"http://127.0.0.1:2379"};
  options.request_timeout = 0ms;
  EXPECT_EQ(OpenEtcdCoordinator(options).status().code(), StatusCode::kInvalidArgument);
}

TEST(EtcdCoordinator, Base64RoundTripsEveryByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t n = 0; n <= 5; ++n) {
    const std::string bytes = all.substr(250 - n, n);
    EXPECT_EQ(etcd::Base64Decode(etcd::Base64Encode(bytes)), bytes) << n;
  }
  EXPECT_EQ(etcd::Base64Encode("foo"), "Zm9v");  // etcd's gateway documentation
  EXPECT_EQ(etcd::Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(etcd::Base64Decode(etcd::Base64Encode(all)), all);
  EXPECT_THROW(etcd::Base64Decode("Zm9v!"), std::invalid_argument);
}

}  // namespace
}  // namespace txmq::cluster
