// Connection guard: keeps the broker's TCP connections within a limit, so
// that a flood of connections can never take the file descriptors the
// storage needs.
//
// Every accepted connection holds a descriptor, and libzmq accepts them by
// itself, as many as arrive. Left alone, about a thousand idle connections
// at `ulimit -n 1024` use up the process's descriptors, the next file the
// storage opens (a log segment, a LevelDB table) cannot be opened, and the
// broker can only wait (storage/src/fd_shortage.h) or stop. The guard
// watches the ROUTER socket's accepts and disconnects (a libzmq socket
// monitor) and, when a new connection is one too many, shuts that socket
// down at once: libzmq sees the connection end and closes it itself (the
// guard never closes a descriptor libzmq owns). The client sees a closed
// connection and, being a ZeroMQ client, tries again later.
//
// The limit is the smaller of --max-connections and what the descriptor
// limit leaves: RLIMIT_NOFILE, less every descriptor that is not a
// connection (log segments, LevelDB, ZeroMQ's own, stdio), less a reserve
// of kStorageReserve for files the storage opens next (a new segment, a
// compaction's output, a checkpoint, directory syncs). The descriptors in
// use are counted again every kRecountInterval, so a log that grew by a
// few segments lowers the limit.
//
// With CURVE it also counts connections per principal (principals(), see
// principal_connections.h): the core claims a connection for its key, this
// thread gives the claim back when the connection closes.
//
// Thread "txmq-conn-guard" (started by Attach) owns monitor_ and open_ (the
// descriptors of accepted connections); the counters are atomics any
// thread may read; principals_ has its own lock.
//
// Thread safety: Attach on the thread that owns the ROUTER socket, before
// it binds; the getters from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "broker/src/principal_connections.h"
#include "txmq/status.h"

namespace txmq::broker {

// Descriptors kept free for the storage whatever the connections do.
inline constexpr size_t kStorageReserve = 64;

// The connection limit in force: `configured` (0: none of its own) capped
// by the descriptor limit `fd_limit` less `other_fds` (descriptors in use
// that are not connections) less kStorageReserve; never below 0.
size_t EffectiveConnectionLimit(size_t configured, size_t fd_limit, size_t other_fds);

// The soft RLIMIT_NOFILE of this process.
size_t DescriptorLimit();

// The peer of a connected socket as "address:port", or "" when `fd` is not
// one (any more).
std::string PeerOfSocket(int fd);

class ConnectionGuard {
 public:
  static constexpr std::chrono::milliseconds kRecountInterval{1000};
  // A shed connection is logged at once, then at most one summary line per
  // this interval (a flood must not flood the log).
  static constexpr std::chrono::seconds kLogInterval{10};

  // `max_connections`: --max-connections (0: only the descriptor limit);
  // `per_principal`: --max-connections-per-principal (0: none).
  ConnectionGuard(zmq::context_t& context, size_t max_connections, size_t per_principal = 0);
  // Stops the guard's thread.
  ~ConnectionGuard();
  ConnectionGuard(const ConnectionGuard&) = delete;
  ConnectionGuard& operator=(const ConnectionGuard&) = delete;

  // Starts watching `router` (not bound yet) and the guard's thread.
  Status Attach(zmq::socket_t& router);

  // Connections open now, the limit in force, connections shed so far.
  size_t connections() const { return connections_.load(std::memory_order_relaxed); }
  size_t limit() const { return limit_.load(std::memory_order_relaxed); }
  uint64_t shed() const { return shed_.load(std::memory_order_relaxed); }
  PrincipalConnections& principals() { return principals_; }
  const PrincipalConnections& principals() const { return principals_; }

 private:
  void Run();
  void OnEvent(uint16_t event, uint32_t value, const std::string& endpoint);
  void Shed(int fd, const std::string& endpoint);
  // Counts this process's descriptors, drops connections libzmq closed
  // without telling, and sets limit_.
  void Recount();
  void LogShedding(bool force);

  zmq::context_t& context_;
  const size_t configured_;
  std::string monitor_endpoint_;
  std::unique_ptr<zmq::socket_t> monitor_;
  std::thread thread_;
  std::atomic<bool> stop_{false};

  // Guard thread. The descriptors of accepted connections, each with its
  // peer's address as it was then (a descriptor libzmq closed and the
  // kernel reused for something else no longer has it).
  std::map<int, std::string> open_;
  std::chrono::steady_clock::time_point next_recount_{};
  std::chrono::steady_clock::time_point next_log_{};
  uint64_t shed_since_log_ = 0;
  size_t other_fds_ = 0;  // descriptors that are not connections, last counted

  std::atomic<size_t> connections_{0};
  std::atomic<size_t> limit_{0};
  std::atomic<uint64_t> shed_{0};
  PrincipalConnections principals_;
};

}  // namespace txmq::broker
