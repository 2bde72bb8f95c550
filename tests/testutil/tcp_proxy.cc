#include "tests/testutil/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace txmq::testing {

namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// One client connection and its upstream twin.
struct Pair {
  int down = -1;  // accepted from the client
  int up = -1;    // to the target
};

void Close(Pair& p) {
  if (p.down >= 0) ::close(p.down);
  if (p.up >= 0) ::close(p.up);
  p.down = p.up = -1;
}

// Moves what `from` has to `to`; false when either side is done.
bool Pump(int from, int to, std::atomic<uint64_t>& forwarded) {
  char buffer[64 * 1024];
  const ssize_t n = ::recv(from, buffer, sizeof buffer, MSG_DONTWAIT);
  if (n == 0) return false;
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  // A peer that reads nothing for a second (stopped, say) loses the link
  // rather than stalling every other one.
  for (ssize_t sent = 0; sent < n;) {
    const ssize_t m =
        ::send(to, buffer + sent, static_cast<size_t>(n - sent), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (m >= 0) {
      sent += m;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
    pollfd writable{to, POLLOUT, 0};
    if (::poll(&writable, 1, 1000) <= 0) return false;
  }
  forwarded += static_cast<uint64_t>(n);
  return true;
}

}  // namespace

std::unique_ptr<TcpProxy> TcpProxy::Start(int target_port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ADD_FAILURE() << "proxy socket: " << std::strerror(errno);
    return nullptr;
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr = Loopback(0);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ADD_FAILURE() << "proxy listen: " << std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<TcpProxy>(new TcpProxy(fd, ntohs(addr.sin_port), target_port));
}

TcpProxy::TcpProxy(int listen_fd, int port, int target_port)
    : listen_fd_(listen_fd), port_(port), target_port_(target_port) {
  thread_ = std::thread([this] { Loop(); });
}

TcpProxy::~TcpProxy() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

void TcpProxy::Switch(int mode) {
  mode_ = mode;
  // A turn under way may have read the old mode; the one after it has not.
  const uint64_t seen = turns_;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (turns_ < seen + 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void TcpProxy::Loop() {
  std::vector<Pair> pairs;
  std::vector<int> held;  // accepted while blackholed: never answered
  for (; !stop_; ++turns_) {
    if (mode_ == kHealing) {
      for (Pair& p : pairs) Close(p);
      pairs.clear();
      for (int fd : held) ::close(fd);
      held.clear();
      mode_ = kForward;
    }
    const bool forwarding = mode_ == kForward;
    std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
    if (forwarding) {
      for (const Pair& p : pairs) {
        fds.push_back({p.down, POLLIN, 0});
        fds.push_back({p.up, POLLIN, 0});
      }
    }
    if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
    if (fds[0].revents & POLLIN) {
      const int down = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (down >= 0) {
        if (!forwarding) {
          held.push_back(down);
        } else {
          const int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
          sockaddr_in target = Loopback(target_port_);
          if (up >= 0 && ::connect(up, reinterpret_cast<sockaddr*>(&target), sizeof target) == 0) {
            pairs.push_back({down, up});
          } else {
            if (up >= 0) ::close(up);
            ::close(down);  // the target is down: so is the link
          }
        }
      }
    }
    // Blackholed while polling: not one byte more.
    if (!forwarding || mode_ != kForward) continue;
    // fds[1 + 2i] and fds[2 + 2i] belong to pairs[i] (as they were when polled).
    std::vector<Pair> alive;
    for (size_t i = 0; i < pairs.size() && 2 + 2 * i < fds.size(); ++i) {
      Pair& p = pairs[i];
      bool ok = true;
      if (fds[1 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR))
        ok = Pump(p.down, p.up, forwarded_);
      if (ok && fds[2 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)) {
        ok = Pump(p.up, p.down, forwarded_);
      }
      if (ok) {
        alive.push_back(p);
      } else {
        Close(p);
      }
    }
    // Pairs accepted during this turn were not polled yet: keep them.
    for (size_t i = (fds.size() - 1) / 2; i < pairs.size(); ++i) alive.push_back(pairs[i]);
    pairs.swap(alive);
  }
  for (Pair& p : pairs) Close(p);
  for (int fd : held) ::close(fd);
}

}  // namespace txmq::testing
