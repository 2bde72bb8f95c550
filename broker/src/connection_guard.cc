#include "broker/src/connection_guard.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <zmq.h>

#include <cstring>

#include "protocol/src/log.h"

namespace txmq::broker {
namespace {

constexpr int kWatchedEvents = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CLOSED;

}  // namespace

std::string PeerOfSocket(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "";
  char host[INET6_ADDRSTRLEN] = {};
  uint16_t port = 0;
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    port = ntohs(in6->sin6_port);
  } else {
    return "local";
  }
  return std::string(host) + ":" + std::to_string(port);
}

namespace {

// Descriptors this process has open, or 0 when they cannot be counted (no
// descriptor left to list them with).
size_t OpenDescriptors() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  size_t n = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n > 0 ? n - 1 : 0;  // less the one the listing used
}

}  // namespace

size_t EffectiveConnectionLimit(size_t configured, size_t fd_limit, size_t other_fds) {
  const size_t taken = other_fds + kStorageReserve;
  const size_t room = fd_limit > taken ? fd_limit - taken : 0;
  return configured == 0 ? room : std::min(configured, room);
}

size_t DescriptorLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    return SIZE_MAX / 2;
  }
  return static_cast<size_t>(limit.rlim_cur);
}

ConnectionGuard::ConnectionGuard(zmq::context_t& context, size_t max_connections,
                                 size_t per_principal)
    : context_(context), configured_(max_connections), principals_(per_principal, PeerOfSocket) {}

ConnectionGuard::~ConnectionGuard() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

Status ConnectionGuard::Attach(zmq::socket_t& router) {
  // One inproc name per guard: several brokers may share a process (tests).
  monitor_endpoint_ =
      "inproc://txmq-conn-guard-" + std::to_string(reinterpret_cast<uintptr_t>(this));
  if (zmq_socket_monitor(router.handle(), monitor_endpoint_.c_str(), kWatchedEvents) != 0) {
    return Status::Internal(std::string("cannot watch the broker socket's connections: ") +
                            zmq_strerror(zmq_errno()));
  }
  try {
    monitor_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::pair);
    monitor_->set(zmq::sockopt::linger, 0);
    monitor_->connect(monitor_endpoint_);
  } catch (const zmq::error_t& e) {
    return Status::Internal(std::string("cannot watch the broker socket's connections: ") +
                            e.what());
  }
  Recount();
  thread_ = std::thread([this] { Run(); });
  return Status::OK();
}

void ConnectionGuard::Run() {
  pthread_setname_np(pthread_self(), "txmq-conn-guard");
  while (!stop_) {
    zmq::pollitem_t item{monitor_->handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(200));
      // Each event is two frames: 16-bit event and 32-bit value, then the
      // endpoint of the listener.
      while (true) {
        zmq::message_t head, endpoint;
        if (!monitor_->recv(head, zmq::recv_flags::dontwait)) break;
        if (!head.more() || !monitor_->recv(endpoint, zmq::recv_flags::dontwait)) continue;
        if (head.size() < 6) continue;
        uint16_t event = 0;
        uint32_t value = 0;
        std::memcpy(&event, head.data(), 2);
        std::memcpy(&value, static_cast<const char*>(head.data()) + 2, 4);
        OnEvent(event, value, endpoint.to_string());
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
      Logger("broker")->error("connection guard: {}", e.what());
    }
    if (std::chrono::steady_clock::now() >= next_recount_) Recount();
    LogShedding(false);
  }
}

void ConnectionGuard::OnEvent(uint16_t event, uint32_t value, const std::string& endpoint) {
  const int fd = static_cast<int>(value);
  if (event == ZMQ_EVENT_ACCEPTED) {
    if (open_.size() + 1 > limit()) return Shed(fd, endpoint);
    open_[fd] = PeerOfSocket(fd);
  } else if (event == ZMQ_EVENT_DISCONNECTED || event == ZMQ_EVENT_CLOSED) {
    open_.erase(fd);
    principals_.Closed(fd);
  }
  connections_.store(open_.size(), std::memory_order_relaxed);
}

void ConnectionGuard::Shed(int fd, const std::string& endpoint) {
  const std::string peer = PeerOfSocket(fd);
  // Not close(): the descriptor is libzmq's. After shutdown its reads end
  // and libzmq closes the connection (and the descriptor) itself.
  ::shutdown(fd, SHUT_RDWR);
  shed_.fetch_add(1, std::memory_order_relaxed);
  if (shed_since_log_++ == 0 && std::chrono::steady_clock::now() >= next_log_) {
    Logger("broker")->warn(
        "connection limit reached: {} connections open on {}, the limit is {} ({}); closed the "
        "connection from {}; further ones are counted and logged every {} s",
        open_.size(), endpoint, limit(),
        configured_ != 0 && limit() == configured_
            ? "--max-connections"
            : "the descriptor limit (ulimit -n " + std::to_string(DescriptorLimit()) +
                  ") less the descriptors in use and " + std::to_string(kStorageReserve) +
                  " kept for storage",
        peer.empty() ? "(gone)" : peer, kLogInterval.count());
    shed_since_log_ = 0;
    next_log_ = std::chrono::steady_clock::now() + kLogInterval;
  }
}

void ConnectionGuard::LogShedding(bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (shed_since_log_ == 0 || (!force && now < next_log_)) return;
  Logger("broker")->warn(
      "connection limit: closed {} more connections in the last {} s ({} open, limit {})",
      shed_since_log_, kLogInterval.count(), open_.size(), limit());
  shed_since_log_ = 0;
  next_log_ = now + kLogInterval;
}

void ConnectionGuard::Recount() {
  next_recount_ = std::chrono::steady_clock::now() + kRecountInterval;
  // libzmq does not report every close (a connection replaced by a
  // reconnecting peer ends without an event): forget descriptors that no
  // longer hold the connection they held.
  for (auto it = open_.begin(); it != open_.end();) {
    it = PeerOfSocket(it->first) == it->second ? std::next(it) : open_.erase(it);
  }
  principals_.Prune();
  // With no descriptor left to list them with, the other descriptors are
  // taken to be as many as last time; the descriptor limit is read anew
  // (an operator may have lowered it: prlimit).
  if (const size_t in_use = OpenDescriptors(); in_use > 0) {
    other_fds_ = in_use > open_.size() ? in_use - open_.size() : 0;
  }
  const size_t limit = EffectiveConnectionLimit(configured_, DescriptorLimit(), other_fds_);
  limit_.store(limit, std::memory_order_relaxed);
  // Over the limit (it went down, or connections came faster than their
  // events): shed the excess, the highest descriptors first.
  while (open_.size() > limit) {
    const auto last = std::prev(open_.end());
    const int fd = last->first;
    open_.erase(last);
    Shed(fd, "the broker's socket");
  }
  connections_.store(open_.size(), std::memory_order_relaxed);
}

}  // namespace txmq::broker
