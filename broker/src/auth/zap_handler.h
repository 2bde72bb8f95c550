// The broker's ZAP handler (ZeroMQ RFC 27): libzmq asks it, for every
// connection that completes a CURVE handshake, whether the client's public
// key may connect. Deny by default: a key the ACL does not name, any other
// mechanism than CURVE, or a malformed request gets 400 and the connection
// is closed before a single request of it reaches the broker. An allowed
// connection carries its key as the ZAP user id, which libzmq attaches to
// every message it sends ("User-Id"): the core reads the principal from
// there, never from a request field.
//
// libzmq lets every key in when nothing answers at inproc://zeromq.zap.01,
// so Start() binds before the broker socket does, and the broker proves
// the handler in force with a self-test (curve_self_test.h).
//
// Thread "txmq-zap" (started by Start) owns the REP socket; it reads the
// ACL through the holder. Stop (or the destructor) joins it; the broker
// closes its own socket first, so no handshake can find the handler gone.
//
// Thread safety: Start/Stop from one thread; counters from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "broker/src/auth/acl.h"
#include "broker/src/auth/refusal_log.h"
#include "protocol/src/event_fd.h"
#include "protocol/src/util.h"
#include "txmq/status.h"

namespace txmq::broker::auth {

inline constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
inline constexpr const char* kZapDomain = "txmq";

class ZapHandler {
 public:
  // Binds the handler in `context` (which must outlive it) and starts its
  // thread. UNAVAILABLE when something else holds the endpoint.
  static Result<std::unique_ptr<ZapHandler>> Start(zmq::context_t& context, const AclHolder& acl);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  uint64_t allowed() const { return allowed_.load(); }
  uint64_t denied() const { return denied_.load(); }

 private:
  ZapHandler(zmq::context_t& context, const AclHolder& acl);
  void Run();
  void Serve();

  const AclHolder& acl_;
  zmq::socket_t socket_;
  EventFd stop_;
  std::thread thread_;
  std::atomic<uint64_t> allowed_{0};
  std::atomic<uint64_t> denied_{0};
  RefusalLog refusals_;  // thread "txmq-zap" only
};

}  // namespace txmq::broker::auth
