// The replication link's ZAP handler (ZeroMQ RFC 27): a fixed allow-list of
// the group's public keys, answered on the thread that owns the transport.
//
// Why not broker/src/auth/ZapHandler: that one checks the client ACL
// (principals with rights, reloaded from a file) and lives in txmq_broker,
// which will link txmq_cluster, not the other way round. A replication
// peer needs no rights, only membership: "is this key one of the group's,
// and whose?". The rules are the same: deny by default, CURVE only, the
// user id of an allowed connection is its Z85 public key.
//
// No thread of its own: the transport polls this REP socket next to its
// ROUTER and calls ServeWaiting. libzmq's handshake waits for the answer
// asynchronously, so a connection is admitted on the owner's next poll.
// libzmq admits every key when nothing is bound at the ZAP endpoint, so
// the transport binds this before it creates its CURVE ROUTER, in a
// context of its own (the endpoint is per context).
//
// Thread safety: the transport's thread owns it; the counters may be read
// from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "broker/src/auth/refusal_log.h"
#include "txmq/status.h"

namespace txmq::cluster {

inline constexpr const char* kReplicationZapDomain = "txmq-replication";

class ZapAllowList {
 public:
  // Binds at inproc://zeromq.zap.01 in `context` (which must outlive it).
  // `keys`: Z85 public key -> peer name. kUnavailable when the endpoint is
  // taken.
  static Result<std::unique_ptr<ZapAllowList>> Bind(zmq::context_t& context,
                                                    std::map<std::string, std::string> keys);
  ZapAllowList(const ZapAllowList&) = delete;
  ZapAllowList& operator=(const ZapAllowList&) = delete;

  zmq::socket_t& socket() { return socket_; }
  // Answers every request waiting, without blocking; returns how many.
  size_t ServeWaiting();

  // Atomics: the transport's metrics read them from other threads.
  uint64_t allowed() const { return allowed_.load(); }
  uint64_t denied() const { return denied_.load(); }

 private:
  ZapAllowList(zmq::context_t& context, std::map<std::string, std::string> keys);
  void Answer(std::vector<zmq::message_t>& request);

  const std::map<std::string, std::string> keys_;
  zmq::socket_t socket_;
  std::atomic<uint64_t> allowed_{0};
  std::atomic<uint64_t> denied_{0};
  broker::auth::RefusalLog refusals_{"cluster"};  // the thread that serves the socket
};

}  // namespace txmq::cluster
