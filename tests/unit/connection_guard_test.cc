// The connection guard on a real ROUTER socket: connections over the limit
// are closed as they arrive, the others stay, and a closed one makes room.
#include "broker/src/connection_guard.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "tests/testutil/testutil.h"

namespace txmq::broker {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

TEST(EffectiveConnectionLimit, TheDescriptorLimitLessWhatIsInUseLessTheStorageReserve) {
  EXPECT_EQ(EffectiveConnectionLimit(0, 1024, 40), 1024u - 40 - kStorageReserve);
  EXPECT_EQ(EffectiveConnectionLimit(100, 1024, 40), 100u);
  EXPECT_EQ(EffectiveConnectionLimit(5000, 1024, 40), 1024u - 40 - kStorageReserve);
  EXPECT_EQ(EffectiveConnectionLimit(0, 100, 40), 0u);
}

// A blocking TCP connection to 127.0.0.1:port.
int Connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

// True when the peer closed `fd`: reading what it sent (its ZeroMQ
// greeting) comes to the end of the stream.
bool ClosedByPeer(int fd) {
  char buffer[256];
  while (true) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n > 0) continue;
    return n == 0 || errno == ECONNRESET;
  }
}

TEST(ConnectionGuard, ClosesConnectionsOverTheLimitAndKeepsTheRest) {
  zmq::context_t context(1);
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  ConnectionGuard guard(context, 2);
  ASSERT_TRUE(guard.Attach(router).ok());
  EXPECT_EQ(guard.limit(), 2u);
  router.bind("tcp://127.0.0.1:*");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  const auto port = static_cast<uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));

  std::vector<int> fds;
  for (int i = 0; i < 5; ++i) fds.push_back(Connect(port));
  ASSERT_TRUE(WaitFor([&] { return guard.shed() == 3; })) << guard.shed();
  EXPECT_EQ(guard.connections(), 2u);
  size_t closed = 0;
  ASSERT_TRUE(WaitFor([&] {
    closed = 0;
    for (int fd : fds) closed += ClosedByPeer(fd) ? 1 : 0;
    return closed == 3;
  }));
  std::this_thread::sleep_for(100ms);  // nothing more is closed later
  closed = 0;
  for (int fd : fds) closed += ClosedByPeer(fd) ? 1 : 0;
  EXPECT_EQ(closed, 3u);

  // The two kept ones end: room for two more.
  for (int fd : fds) ::close(fd);
  ASSERT_TRUE(WaitFor([&] { return guard.connections() == 0; })) << guard.connections();
  const int again = Connect(port);
  ASSERT_TRUE(WaitFor([&] { return guard.connections() == 1; }));
  EXPECT_EQ(guard.shed(), 3u);
  ::close(again);
}

}  // namespace
}  // namespace txmq::broker
