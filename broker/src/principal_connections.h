// How many connections each principal has open, so one key cannot take
// every connection the broker allows (--max-connections-per-principal).
//
// The core thread claims a connection for its principal on the
// connection's first authenticated request (it knows the descriptor from
// the message: ZMQ_SRCFD); the connection guard's thread gives claims back
// when libzmq reports the descriptor closed. A descriptor number is reused
// by the kernel, and libzmq's close event may arrive after the number
// already belongs to a new connection, so each claim remembers its peer's
// address: a claim whose descriptor no longer has that peer is gone, and a
// close event for a descriptor that still has it is an old one.
//
// Thread safety: every method may be called from any thread (one mutex).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "txmq/status.h"

namespace txmq::broker {

class PrincipalConnections {
 public:
  // The peer of a descriptor ("address:port"; "" when it is no connection).
  using PeerFn = std::function<std::string(int fd)>;

  // `limit`: most connections per principal (0: no limit).
  PrincipalConnections(size_t limit, PeerFn peer_of);

  // The connection on `fd` speaks for `principal`. OK when it is counted
  // (or was already); RESOURCE_EXHAUSTED naming the limit and its flag when
  // the principal has `limit` connections open already.
  Status Claim(int fd, const std::string& principal);
  // libzmq closed the connection on `fd`.
  void Closed(int fd);
  // Drops claims whose descriptor no longer holds their connection (libzmq
  // does not report every close).
  void Prune();

  size_t Of(const std::string& principal) const;
  // The most connections any principal has open (for status).
  size_t Largest() const;
  size_t limit() const { return limit_; }
  // Claims given back so far: a connection claimed before the last release
  // may have been the one released (a client that reconnected under the
  // same routing id on a new descriptor), so its next request claims again.
  uint64_t releases() const { return releases_.load(std::memory_order_acquire); }

 private:
  struct Claimed {
    std::string principal;
    std::string peer;
  };
  // mu_ held.
  void Release(std::map<int, Claimed>::iterator it);
  void PruneLocked(const std::string* only_principal);

  // A refused connection claims again with each request; the search for
  // claims libzmq closed silently runs at most this often for them.
  static constexpr std::chrono::milliseconds kPruneEvery{100};

  const size_t limit_;
  const PeerFn peer_of_;
  std::atomic<uint64_t> releases_{0};
  mutable std::mutex mu_;
  std::chrono::steady_clock::time_point pruned_at_{};  // guarded by mu_
  std::map<int, Claimed> claims_;                      // by descriptor; guarded by mu_
  std::unordered_map<std::string, size_t> open_;       // by principal; guarded by mu_
};

}  // namespace txmq::broker
