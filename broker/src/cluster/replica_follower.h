// The follower side of replication: answers the leader's appends and
// truncations on this node's ReplicaLog.
//
// Invariants it keeps (DESIGN.md "Replication" says why they suffice):
// - it never acts on a request of an epoch below the highest it persisted,
//   and persists a higher epoch before acting on the request that carried
//   it; the answer to a stale request changes nothing on disk;
// - it appends only after `prev`, which must be in its log with the same
//   chain crc, so its log is a prefix of the leader's up to what it
//   answers;
// - it answers ok only after Sync: every entry an ok answer names is on
//   disk, so what the leader counts toward its commit index survives a
//   power loss here;
// - it truncates only when the leader says where (TruncateRequest), only
//   above the commit index it learned (applied or appliable entries are
//   never cut), and only at an entry that is the leader's too.
//
// Only entries up to commit_index() may be applied to the broker store.
//
// Thread safety: none; the replication thread owns it and its log.
#pragma once

#include <cstdint>
#include <string>

#include "broker/src/cluster/replica_log.h"
#include "broker/src/cluster/replication_messages.h"

namespace txmq::cluster {

class ReplicaFollower {
 public:
  // `log` must outlive the follower. `commit_floor`: an index known
  // committed before this start, below which nothing is ever truncated
  // (txmqd passes 0: its store starts empty at every start).
  ReplicaFollower(std::string node, ReplicaLog& log, uint64_t commit_floor = 0)
      : node_(std::move(node)), log_(log), commit_(commit_floor) {}
  ReplicaFollower(const ReplicaFollower&) = delete;
  ReplicaFollower& operator=(const ReplicaFollower&) = delete;

  AppendAnswer HandleAppend(const AppendRequest& request);
  AppendAnswer HandleTruncate(const TruncateRequest& request);
  // Either request in a message; an answer or anything unknown gets a
  // kFailed answer.
  ReplicationMessage Handle(const ReplicationMessage& message);

  // The highest index known committed: the leader's commit index, capped
  // at what this log is known to share with the leader. Not persisted: after
  // a restart the floor it was started with, until the leader's next
  // request says the rest.
  uint64_t commit_index() const { return commit_; }
  // The leader of the highest epoch seen ("" before the first request).
  const std::string& leader() const { return leader_; }
  const std::string& node() const { return node_; }

 private:
  // Checks and persists the request's epoch; false (with `answer` filled)
  // when the request must be refused.
  bool AcceptEpoch(int64_t epoch, const std::string& leader, AppendAnswer& answer);
  // Fills a divergent answer about the entry at `index` in this log.
  void Divergent(uint64_t index, AppendAnswer& answer) const;
  AppendAnswer Answer(Outcome outcome, std::string reason = {}) const;

  const std::string node_;
  ReplicaLog& log_;
  std::string leader_;
  int64_t leader_epoch_ = 0;  // the epoch leader_ leads
  uint64_t commit_ = 0;
};

}  // namespace txmq::cluster
