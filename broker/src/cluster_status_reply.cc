#include "broker/src/cluster_status_reply.h"

#include "broker/src/round_replicator.h"

namespace txmq::broker {

wire::ClusterStatusView ClusterStatusOf(const cluster::ClusterHealth& h) {
  wire::ClusterStatusView v;
  v.member = true;
  v.cluster = h.cluster;
  v.group = h.group;
  v.node = h.node;
  v.leading = h.leading;
  v.leader = h.leader;
  v.leader_url = h.leader_url;
  v.epoch = h.epoch;
  v.isr = h.isr;
  v.min_isr = static_cast<uint32_t>(h.min_isr);
  v.last_index = h.last_index;
  v.commit_index = h.commit_index;
  v.coordinator_error = h.coordinator_error;
  for (const cluster::ReplicaHealth& r : h.replicas) {
    v.replicas.push_back({r.node, r.leader, r.in_isr, r.progress_known, r.log_index, r.lag_entries,
                          r.last_contact_ms});
  }
  return v;
}

wire::ClusterStatusView ClusterStatusFor(const BrokerOptions& o) {
  if (o.replicator != nullptr) {
    if (auto board = o.replicator->health()) {
      wire::ClusterStatusView v = ClusterStatusOf(board->Read());
      v.groups = o.replicator->Groups();
      return v;
    }
  }
  wire::ClusterStatusView v;
  v.node = o.name;
  return v;
}

QueuePlacement PlacementFor(const BrokerOptions& o) {
  if (o.replicator != nullptr) {
    if (auto board = o.replicator->health()) {
      const cluster::ClusterHealth h = board->Read();
      // Only the leader serves topic show; the record may lag its own win
      // by a tick, so its own name is the better answer then.
      return {h.group, h.leading || h.leader.empty() ? h.node : h.leader};
    }
  }
  return {"", o.name};
}

}  // namespace txmq::broker
