// net::Connection::WaitConnected: a client learns at once that nothing
// listens at the broker address, instead of waiting out its deadline.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol/src/connection.h"
#include "tests/testutil/testutil.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;

// A loopback port nothing listens on (bound once to pick it, then closed).
int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  return ntohs(addr.sin_port);
}

std::unique_ptr<net::Connection> Open(const std::string& url) {
  net::ConnectionOptions o;
  o.broker = url;
  auto c = net::Connection::Open(o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c.value()) : nullptr;
}

TEST(ConnectionReach, RefusedIsKnownAtOnceAndNamesTheAddress) {
  const std::string url = "tcp://127.0.0.1:" + std::to_string(ClosedPort());
  auto c = Open(url);
  ASSERT_NE(c, nullptr);
  const auto start = std::chrono::steady_clock::now();
  Status s = c->WaitConnected(30s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "waited for the deadline";
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_EQ(s.message(), "no broker at " + url + " (connection refused)");

  // A call that could never be sent says the same when its deadline ends.
  auto reply = c->CallSync(
      [&] {
        auto r = c->NewRequest();
        r.envelope().setStatus();
        return r;
      }(),
      300ms);
  EXPECT_EQ(reply.status().message(), "no broker at " + url + " (connection refused)");
}

TEST(ConnectionReach, ABrokerThatStartsLaterIsReached) {
  const std::string url = "tcp://127.0.0.1:" + std::to_string(ClosedPort());
  auto c = Open(url);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->WaitConnected(30s).code(), StatusCode::kUnavailable);
  // ZeroMQ keeps retrying; once a broker listens there, the connection is up.
  testing::TempDir dir;
  BrokerOptions options = testing::TestBrokerOptions(dir.Sub("data"));
  options.listen = url;
  auto broker = testing::StartBroker(options);
  ASSERT_NE(broker, nullptr);
  EXPECT_TRUE(testing::WaitFor([&] { return c->WaitConnected(100ms).ok(); }, 20s));
  auto r = c->NewRequest();
  r.envelope().setStatus();
  EXPECT_TRUE(c->CallSync(std::move(r), 10s).ok());
}

TEST(ConnectionReach, ALiveBrokerIsReached) {
  testing::TempDir dir;
  auto broker = testing::StartBroker(testing::TestBrokerOptions(dir.Sub("data")));
  ASSERT_NE(broker, nullptr);
  auto c = Open(broker->endpoint());
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->WaitConnected(30s).ok());
}

}  // namespace
}  // namespace txmq
