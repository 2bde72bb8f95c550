// What a cluster node that does not lead answers its clients: a cluster
// status request gets this node's own view of its group (an operator
// asks any node), every other request NOT_LEADER with the group leader's client URL in the error's
// leaderUrl field (empty while unknown) and in its message, so a client
// library reconnects there and an operator reading the error knows where to
// go. Clients older than the code read it as an error all the same. Nothing is read or stored: a
// node that does not lead has no broker yet (txmqd_cluster.h).
//
// With CURVE (--curve-secret-key and --acl) the socket is a CURVE server
// exactly as the broker's is (auth/security.h: the same key, the same ACL,
// the broker's ZAP handler in the responder's own context, bound before the
// socket and proven to refuse an unknown key before it answers anyone), so
// a CURVE client given every node hears NOT_LEADER from a follower and a
// key the ACL does not name is refused here too. Every admitted principal
// may hear both answers, as on the broker (guard.cc: cluster status needs
// no right; a NOT_LEADER says no more than the record every node reads).
//
// Thread "txmq-standby" owns the ROUTER socket and its ZeroMQ context;
// `leader` is called on it; with CURVE the ZAP handler has its own thread
// "txmq-zap". Destroying the responder closes the socket, the handler and
// the context, so the endpoint is free for the broker when it returns.
//
// Thread safety: construct, ReloadAcl and destroy on one thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "protocol/src/cluster_status_codec.h"
#include "txmq/broker.h"
#include "txmq/status.h"

namespace txmq::broker {

class StandbyResponder {
 public:
  // Binds `endpoint`, plaintext or, when `security` names a CURVE secret
  // key and an ACL (BrokerOptions::curve_secret_key_file, acl_file), as a
  // CURVE server admitting the ACL's keys; kUnavailable when it cannot
  // bind, the key's or the ACL's error when they cannot be read, an error
  // when the self-test finds an unknown key let in. `leader` says where
  // the leader is ("" while unknown); `who` names this node in the
  // answers; `status` is its view for cluster status requests.
  static Result<std::unique_ptr<StandbyResponder>> Start(
      std::string endpoint, std::string who, std::function<std::string()> leader,
      std::function<wire::ClusterStatusView()> status, const BrokerOptions& security = {});
  ~StandbyResponder();
  StandbyResponder(const StandbyResponder&) = delete;
  StandbyResponder& operator=(const StandbyResponder&) = delete;

  bool curve() const;
  // Re-reads the ACL file (SIGHUP); on error the one in force stays. OK
  // and nothing done without CURVE.
  Status ReloadAcl();

  // The answer a client gets while the leader is at `leader_url`.
  static Status NotLeader(const std::string& who, const std::string& leader_url);

 private:
  struct Impl;
  explicit StandbyResponder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace txmq::broker
