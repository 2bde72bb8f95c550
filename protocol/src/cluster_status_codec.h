// A replicated group's state as the wire carries it (ClusterStatus in
// txmq.capnp), in plain C++ for the two ends: the broker (or the standby
// responder of a node that does not lead) fills it, txmqctl cluster status
// reads it. Field meanings are the schema's.
//
// Thread safety: plain data and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/txmq.capnp.h"

namespace txmq::wire {

struct ReplicaStatusView {
  std::string node;
  bool leader = false;
  bool in_isr = false;
  bool progress_known = false;
  uint64_t log_index = 0;
  uint64_t lag_entries = 0;
  int64_t last_contact_ms = -1;

  bool operator==(const ReplicaStatusView&) const = default;
};

struct GroupLeaderView {
  std::string group;
  std::string leader;
  std::string leader_url;
  int64_t epoch = 0;
  std::vector<std::string> node_urls;

  bool operator==(const GroupLeaderView&) const = default;
};

struct ClusterStatusView {
  bool member = false;  // false: a single broker (the rest but `node` empty)
  std::string cluster;
  std::string group;
  std::string node;
  bool leading = false;
  std::string leader;
  std::string leader_url;
  int64_t epoch = 0;
  std::vector<std::string> isr;
  uint32_t min_isr = 0;
  uint64_t last_index = 0;
  uint64_t commit_index = 0;
  std::string coordinator_error;
  std::vector<ReplicaStatusView> replicas;
  std::vector<GroupLeaderView> groups;  // every group of the cluster

  bool operator==(const ClusterStatusView&) const = default;
};

void FillClusterStatus(const ClusterStatusView& view, ClusterStatus::Builder out);
// Throws kj::Exception on a malformed message, as every reader does.
ClusterStatusView ReadClusterStatus(ClusterStatus::Reader in);

}  // namespace txmq::wire
