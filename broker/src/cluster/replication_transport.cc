#include "broker/src/cluster/replication_transport.h"

namespace txmq::cluster {

size_t ServeFollower(ReplicationTransport& transport, ReplicaFollower& follower) {
  size_t served = 0;
  while (auto frame = transport.Receive()) {
    auto request = DecodeReplicationMessage(frame->bytes);
    if (!request.ok()) continue;  // TODO: count and log malformed frames
    // A lost answer is resent by the leader's timer; nothing to do here.
    (void)transport.Send(frame->peer, EncodeReplicationMessage(follower.Handle(*request)));
    ++served;
  }
  return served;
}

size_t PumpLeader(ReplicationTransport& transport, ReplicationLeader& leader,
                  ReplicationClock::time_point now) {
  size_t moved = 0;
  for (Outgoing& out : leader.Poll(now)) {
    (void)transport.Send(out.to, std::move(out.frame));
    ++moved;
  }
  while (auto frame = transport.Receive()) {
    auto answer = DecodeReplicationMessage(frame->bytes);
    if (answer.ok()) leader.OnAnswer(frame->peer, *answer, now);
    ++moved;
  }
  return moved;
}

}  // namespace txmq::cluster
