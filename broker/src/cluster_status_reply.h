// What a broker answers about its replicated group (txmqctl cluster
// status, and the group and leader columns of topic show): a cluster node
// from its health board, a single broker "not a member" with its name.
// The standby responder of a node that does not lead answers the same
// from the same board.
//
// Thread safety: pure functions; the board has its own lock.
#pragma once

#include <string>

#include "broker/src/cluster/cluster_health.h"
#include "protocol/src/cluster_status_codec.h"
#include "txmq/broker.h"

namespace txmq::broker {

wire::ClusterStatusView ClusterStatusOf(const cluster::ClusterHealth& health);
// `o.replicator`'s board when it has one, else a single broker named o.name.
wire::ClusterStatusView ClusterStatusFor(const BrokerOptions& o);

// Which group a queue of this broker belongs to and who serves it: every
// queue of a node is its group's ("" on a single broker), served by the
// leader (the single broker itself).
struct QueuePlacement {
  std::string group;
  std::string leader;
};
QueuePlacement PlacementFor(const BrokerOptions& o);

}  // namespace txmq::broker
