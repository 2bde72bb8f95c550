// CURVE on the broker socket: the broker's key pair, the ACL and the ZAP
// handler, set up in the order that leaves no gap (handler bound, then the
// socket made a CURVE server, bound, and proven to refuse an unknown key).
//
// Thread safety: Open, ConfigureRouter and Prove on the starting thread;
// ReloadAcl from any thread (txmqd calls it on SIGHUP).
#pragma once

#include <memory>
#include <string>
#include <zmq.hpp>

#include "broker/src/auth/acl.h"
#include "broker/src/auth/zap_handler.h"
#include "txmq/broker.h"

namespace txmq::broker::auth {

// Whether a client elsewhere cannot reach `endpoint`: tcp:// on 127.0.0.0/8,
// [::1] or localhost, and ipc:// and inproc://. Anything else (0.0.0.0, *,
// an interface name, another address) reaches the network.
bool IsLoopbackEndpoint(const std::string& endpoint);
// The host part alone: 127.0.0.0/8 in dotted form, ::1 ([::1]), localhost.
bool IsLoopbackHost(const std::string& host);

class Security {
 public:
  // Null when `options` ask for plaintext (no key file, no ACL). Reads the
  // secret key and the ACL and starts the ZAP handler in `context`.
  static Result<std::unique_ptr<Security>> Open(const BrokerOptions& options,
                                                zmq::context_t& context);

  // Before bind: makes `router` a CURVE server in txmq's ZAP domain.
  Status ConfigureRouter(zmq::socket_t& router) const;
  // After bind: the self-test (curve_self_test.h) against `endpoint`.
  Status Prove(zmq::context_t& context, const std::string& endpoint) const;

  // Re-reads the ACL file; on error the one in force stays.
  Status ReloadAcl();

  const AclHolder& acl() const { return *acl_; }
  const std::string& public_key() const { return public_key_; }

 private:
  Security() = default;

  std::string secret_key_;
  std::string public_key_;
  std::unique_ptr<AclHolder> acl_;
  std::unique_ptr<ZapHandler> zap_;
};

}  // namespace txmq::broker::auth
