// A flood of connections at a low descriptor limit. txmqd runs as a real
// process whose RLIMIT_NOFILE the test lowers to 1024 (prlimit(2)); the
// test then opens 2,000 ZeroMQ connections to it that never send a request.
// Without a connection limit libzmq accepts until no descriptor is left and
// the storage cannot open its next log segment. The broker must keep
// serving: a producer connected before the flood has every message
// acknowledged while the log rolls over to new segments, the storage never
// waits for a descriptor, and once the flood ends new clients get in.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstring>
#include <memory>
#include <vector>
#include <zmq.hpp>

#include "tests/testutil/testutil.h"
#include "txmq/producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::BinPath;
using testing::BrokerProcess;
using testing::TempDir;
using testing::WaitFor;

constexpr int kFlood = 2000;
constexpr rlim_t kBrokerDescriptors = 1024;

// Opens `n` ZeroMQ connections to the broker that finish their handshake
// and then say nothing: each holds a descriptor in the broker for as long
// as it stays (unlike a bare TCP connect, which the broker's handshake
// timeout drops). A connection the broker closes is tried again by ZeroMQ.
class Flood {
 public:
  Flood(const std::string& endpoint, int n) : context_(1) {
    context_.set(zmq::ctxopt::max_sockets, n + 16);
    for (int i = 0; i < n; ++i) {
      sockets_.emplace_back(context_, zmq::socket_type::dealer);
      sockets_.back().set(zmq::sockopt::linger, 0);
      sockets_.back().connect(endpoint);
    }
  }
  size_t size() const { return sockets_.size(); }

 private:
  zmq::context_t context_;
  std::vector<zmq::socket_t> sockets_;
};

class ConnectionFlood : public ::testing::Test {
 protected:
  void SetUp() override {
    // The test itself holds the flood's descriptors.
    rlimit own{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &own), 0);
    if (own.rlim_cur < 4 * kFlood) {
      own.rlim_cur = std::min<rlim_t>(own.rlim_max, 4 * kFlood);
      ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &own), 0);
    }
    ASSERT_GE(own.rlim_cur, static_cast<rlim_t>(2 * kFlood + 100))
        << "this test needs " << 2 * kFlood + 100 << " descriptors (ulimit -n)";
  }
};

TEST_F(ConnectionFlood, TwoThousandConnectionsAtUlimit1024LeaveTheBrokerServing) {
  TempDir dir;
  // Small segments: the sends below make the log open new ones during the
  // flood. No disk watermark: the test is about descriptors.
  BrokerProcess broker(dir.Sub("data"),
                       {"--segment-mb", "2", "--max-message-bytes", "262144", "--write-buffer-mb",
                        "1", "--table-file-mb", "1", "--min-free-disk", "0"});
  ASSERT_TRUE(broker.Start());
  Producer producer({.broker = broker.endpoint(), .send_timeout = 10s});
  ASSERT_TRUE(producer.Start().ok());
  ASSERT_TRUE(producer.Send({.topic = "flood", .body = "before", .id = "before"}).ok());

  const rlimit low{kBrokerDescriptors, kBrokerDescriptors};
  ASSERT_EQ(prlimit(broker.pid(), RLIMIT_NOFILE, &low, nullptr), 0) << std::strerror(errno);

  auto flood = std::make_unique<Flood>(broker.endpoint(), kFlood);
  ASSERT_TRUE(WaitFor(
      [&] {
        return testing::ReadFile(broker.log_path()).find("connection limit reached") !=
               std::string::npos;
      },
      30s))
      << testing::ReadFile(broker.log_path());

  // 200 x 32 KiB: over 6 MiB, at least three new 2 MiB log segments.
  const std::string body(32 * 1024, 'f');
  for (int i = 0; i < 200; ++i) {
    const std::string id = "flood-" + std::to_string(i);
    auto sent = producer.Send({.topic = "flood", .body = body, .id = id});
    ASSERT_TRUE(sent.ok()) << id << ": " << sent.status().ToString() << "\n"
                           << testing::ReadFile(broker.log_path());
  }

  // Once the flood is gone, new clients get in.
  flood.reset();
  auto status = testing::RunCommand(
      {BinPath("txmqctl"), "--broker", broker.endpoint(), "--timeout", "60s", "status"}, "", 90s);
  EXPECT_EQ(status.exit_code, 0) << status.err;

  auto delivered = testing::DrainTopic(broker.endpoint(), "flood", 201);
  EXPECT_EQ(delivered.size(), 201u);

  const std::string log = testing::ReadFile(broker.log_path());
  EXPECT_EQ(log.find("for a file descriptor"), std::string::npos)
      << "the storage ran short of descriptors:\n"
      << log;
  EXPECT_FALSE(broker.WaitExit(0ms).has_value()) << log;
  EXPECT_EQ(broker.Stop(), 0);
}

}  // namespace
}  // namespace txmq
