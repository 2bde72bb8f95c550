// What every node of a broker group must agree on, kept in etcd beside the
// group record: /txmq/<cluster>/groups/<group>/config, written once by the
// first node that starts and compared by every node after it.
//
// The one setting today is the commit log's segment size: a replica
// rebuilds its store by writing the leader's rounds in the same order, and
// the rounds' index records name log positions, which only match when
// every node cuts its log into segments of the same size
// (replicated_round.h). A node started with another --segment-mb would
// serve wrong reads after a failover; it is refused instead.
#pragma once

#include <cstdint>
#include <string>

#include "broker/src/cluster/coordinator.h"
#include "txmq/status.h"

namespace txmq::cluster {

struct GroupConfig {
  uint64_t segment_bytes = 0;
};

std::string GroupConfigKey(const std::string& cluster, const std::string& group);

// Stores `mine` as the group's config if it has none yet; otherwise
// compares. kFailedPrecondition naming both values when they differ;
// kCorruption for a record that cannot be read; the coordinator's error
// (kUnavailable, kTimeout) when etcd cannot be asked.
Status AgreeOnGroupConfig(Coordinator& coordinator, const std::string& cluster,
                          const std::string& group, const GroupConfig& mine);

}  // namespace txmq::cluster
