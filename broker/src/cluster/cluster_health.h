// What a cluster node knows about its part in its replication group: a
// copy the replication thread publishes at every tick
// (ClusterNode::health()), read by /readyz, /metrics and the start-up log.
//
// Thread safety: ClusterHealth is plain data; HealthBoard is shared by the
// replication thread (Publish) and any reader (Read), under its mutex.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace txmq::cluster {

// One member of the group as the publishing node knows it. The leader
// knows each follower's progress from its answers; a follower knows only
// its own log (`progress_known` false for the others).
struct ReplicaHealth {
  std::string node;
  bool leader = false;  // the group record names it
  bool in_isr = false;
  bool progress_known = false;
  // The leader and the publishing node itself: the last entry of its log;
  // a follower seen by the leader: its match index (fsynced and identical).
  uint64_t log_index = 0;
  // Entries the leader has and this member has not confirmed (0 for the
  // leader; unknown on a follower's own view).
  uint64_t lag_entries = 0;
  // Milliseconds since the leader last heard from it; -1: not in this epoch
  // (or not known: a follower does not hear from its peers).
  int64_t last_contact_ms = -1;

  bool operator==(const ReplicaHealth&) const = default;
};

struct ClusterHealth {
  std::string cluster;
  std::string group;
  std::string node;
  // The group record's epoch as last read or won (0: none seen yet).
  int64_t epoch = 0;
  // This node leads `epoch`. It serves clients only once its epoch-start
  // entry committed (the broker then reports `started`).
  bool leading = false;
  std::vector<std::string> isr;  // as last read or written
  size_t min_isr = 1;
  std::string leader;      // the leader's node name as etcd has it ("" none)
  std::string leader_url;  // the leader's client URL ("" unknown)
  // The replica log: its last entry and (on the leader) the highest entry
  // every ISR member has fsynced.
  uint64_t last_index = 0;
  uint64_t commit_index = 0;
  uint64_t log_bytes = 0;  // its files on disk
  // A follower: the highest commit index it has learned, and the entries
  // the store it keeps beside its log holds (broker/src/standby_store.h);
  // a takeover replays the committed entries after that. 0 on a leader.
  uint64_t follower_commit = 0;
  uint64_t store_applied = 0;
  // Why the last tick could not reach etcd ("" when it could).
  std::string coordinator_error;
  // Every member of the group (this node and its --peers), by name.
  std::vector<ReplicaHealth> replicas;

  bool InIsr() const { return std::find(isr.begin(), isr.end(), node) != isr.end(); }
};

// Where the node posts its latest ClusterHealth. Held by shared_ptr so a
// reader (the HTTP endpoint) may outlive the node it watches.
class HealthBoard {
 public:
  explicit HealthBoard(ClusterHealth initial) : health_(std::move(initial)) {}
  void Publish(ClusterHealth health) {
    std::lock_guard<std::mutex> lock(mu_);
    health_ = std::move(health);
  }
  ClusterHealth Read() const {
    std::lock_guard<std::mutex> lock(mu_);
    return health_;
  }

 private:
  mutable std::mutex mu_;
  ClusterHealth health_;  // guarded by mu_
};

}  // namespace txmq::cluster
