// What a cluster node that does not lead answers its clients: a cluster
// status request gets this node's own view of its group (an operator
// asks any node), every other request NOT_LEADER with the group leader's client URL in the error's
// leaderUrl field (empty while unknown) and in its message, so a client
// library reconnects there and an operator reading the error knows where to
// go. Clients older than the code read it as an error all the same. Nothing is read or stored: a
// node that does not lead has no broker yet (txmqd_cluster.h).
//
// Thread "txmq-standby" owns the ROUTER socket and its ZeroMQ context;
// `leader` is called on it. Destroying the responder closes the socket and
// the context, so the endpoint is free for the broker when it returns.
//
// Thread safety: construct and destroy on one thread; nothing else.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "protocol/src/cluster_status_codec.h"
#include "txmq/status.h"

namespace txmq::broker {

class StandbyResponder {
 public:
  // Binds `endpoint` (plaintext); kUnavailable when it cannot. `leader`
  // says where the leader is ("" while unknown); `who` names this node in
  // the answers; `status` is its view for cluster status requests.
  static Result<std::unique_ptr<StandbyResponder>> Start(
      std::string endpoint, std::string who, std::function<std::string()> leader,
      std::function<wire::ClusterStatusView()> status);
  ~StandbyResponder();
  StandbyResponder(const StandbyResponder&) = delete;
  StandbyResponder& operator=(const StandbyResponder&) = delete;

  // The answer a client gets while the leader is at `leader_url`.
  static Status NotLeader(const std::string& who, const std::string& leader_url);

 private:
  struct Impl;
  explicit StandbyResponder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace txmq::broker
