// What a cluster node that does not lead answers its clients: every
// request gets UNAVAILABLE naming the group's leader, so a client (or an
// operator reading its error) knows where to go, and retries (a leader may
// be elected any moment). Nothing is read or stored: a node that does not
// lead has no broker yet (txmqd_cluster.h).
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

#include "txmq/status.h"

namespace txmq::broker {

class StandbyResponder {
 public:
  // Binds `endpoint` (plaintext); kUnavailable when it cannot. `leader`
  // says where the leader is ("" while unknown); `who` names this node in
  // the answers.
  static Result<std::unique_ptr<StandbyResponder>> Start(std::string endpoint, std::string who,
                                                         std::function<std::string()> leader);
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
