// How replication messages travel between the leader and its followers:
// encoded frames (replication_messages.h) to and from named peers.
//
// Implementations: InProcNetwork (inproc_transport.h) for deterministic
// tests; ZmqReplicationTransport (zmq_transport.h: a DEALER per peer, a
// ROUTER on every node, optional CURVE) between processes. Delivery is
// best effort: a frame may be lost (the leader resends after
// ReplicationLeaderOptions.resend_after); frames from one peer arrive in
// order.
//
// The free functions move one round of traffic between a transport and the
// leader or follower logic; the replication thread calls them in its loop.
//
// Thread safety: a transport belongs to one thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "broker/src/cluster/replica_follower.h"
#include "broker/src/cluster/replication_leader.h"
#include "txmq/status.h"

namespace txmq::cluster {

struct TransportFrame {
  std::string peer;  // who sent it
  std::string bytes;
};

class ReplicationTransport {
 public:
  virtual ~ReplicationTransport() = default;
  // Queues `frame` for `peer`, keeping a reference rather than a copy;
  // kUnavailable when it cannot now (unknown peer, full queue): the frame
  // is dropped.
  virtual Status Send(const std::string& peer, SharedFrame frame) = 0;
  Status Send(const std::string& peer, std::string bytes) {
    return Send(peer, std::make_shared<const std::string>(std::move(bytes)));
  }
  // The next frame that arrived, without waiting; none when there is none.
  virtual std::optional<TransportFrame> Receive() = 0;
};

// Answers every request waiting on `transport`; returns how many. Frames
// that do not decode are dropped (the sender resends).
size_t ServeFollower(ReplicationTransport& transport, ReplicaFollower& follower);

// Sends what leader.Poll(now) returns and hands every waiting answer to
// the leader; returns the number of frames moved.
size_t PumpLeader(ReplicationTransport& transport, ReplicationLeader& leader,
                  ReplicationClock::time_point now);

}  // namespace txmq::cluster
