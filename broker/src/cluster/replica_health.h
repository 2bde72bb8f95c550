// The group's members as one node sees them, for ClusterHealth::replicas
// (txmqctl cluster status and /metrics): the leader adds what its
// followers' answers told it; any other node knows only its own log.
//
// Thread safety: a pure function; the replication thread calls it with
// the state it owns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "broker/src/cluster/cluster_health.h"
#include "broker/src/cluster/group_state.h"
#include "broker/src/cluster/replication_leader.h"

namespace txmq::cluster {

// `self` and `peers` are the group (this node and its --peers); `view` the
// record as last read; `own_last` this node's last log index; `leader`
// this node's ReplicationLeader while it leads, else null. Sorted by name.
std::vector<ReplicaHealth> DescribeReplicas(const std::string& self,
                                            const std::vector<std::string>& peers,
                                            const GroupState& view, uint64_t own_last,
                                            const ReplicationLeader* leader,
                                            ReplicationClock::time_point now);

}  // namespace txmq::cluster
