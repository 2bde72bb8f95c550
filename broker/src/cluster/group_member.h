// One node's part in its broker group: liveness, leader election with
// epochs, and the in-sync replica set (ISR), all through a Coordinator.
//
// The replication layer owns one GroupMember per node and drives it: it
// calls Tick(now) every lease TTL / 3 or so, asks IsLeader(now) and
// CanAck(now) before acknowledging, tags log entries with leader_epoch(),
// and calls ShrinkIsr / ExpandIsr when a follower falls behind or catches
// up. No threads and no clock of its own: time is whatever the owner
// passes, so tests run on a manual clock.
//
// Rules (DESIGN.md "Cluster: membership, election and the ISR" says why
// each is safe):
// - a node leads only if the record's leader is gone (its liveness key is
//   absent), or there is none, or it is this node's previous incarnation;
//   it is in the ISR (never an unclean election); and the write of the new
//   epoch is a transaction on the record's mod revision, the old leader's
//   key still absent and this node's own key still its own;
// - the leader changes the ISR only by transactions on the mod revision it
//   last wrote; the ISR always holds the leader;
// - the node steps down at once on any sign that its view is stale: a
//   failed conditional write, a record changed by someone else (a higher
//   epoch), its lease ended, a write whose outcome is unknown. While the
//   store cannot be reached nothing changes, but IsLeader() turns false
//   once the node's lease could have ended.
//
// Thread safety: none; the owner calls every method from one thread (or
// under its own lock). Calls that reach the store block for up to the
// Coordinator's timeouts.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "broker/src/cluster/coordinator.h"
#include "broker/src/cluster/group_state.h"
#include "broker/src/cluster/node_lease.h"

namespace txmq::cluster {

struct GroupMemberOptions {
  // Names of the cluster, this node's group and this node: non-empty, no
  // '/' (they are parts of keys).
  std::string cluster;
  std::string group;
  std::string node;
  // Where clients and followers reach this node; stored in its liveness key.
  std::string listen_url;
  // The liveness lease. Failover takes about one TTL after a leader dies;
  // the owner ticks well within it (a third is usual). At least 1 s.
  std::chrono::seconds lease_ttl{3};
  // The ISR size under which the leader must not acknowledge (CanAck);
  // 1 is a single node's durability, 2 or more survives a lost disk.
  size_t min_isr = 1;
  // The highest epoch this node persisted (the log layer keeps it); an
  // election never picks an epoch at or below it, even if the record was
  // reset. 0 for a node with no log yet.
  int64_t highest_epoch_seen = 0;
};

// What one Tick did. Both flags may be set: stepped down (its lease ended),
// then won again with a new epoch; handle stepped_down first.
struct TickReport {
  // OK when the store answered every call of this tick; otherwise why not
  // (kUnavailable, kTimeout, kCorruption for an unreadable record). Roles do
  // not change because of it; no election happens without the store.
  Status coordinator;
  // This node won epoch leader_epoch(). Hook for the log layer: append the
  // epoch-start entry and wait for it to commit before serving.
  bool became_leader = false;
  // This node led at the start of the tick and no longer does: stop
  // acknowledging, become a follower of view().leader.
  bool stepped_down = false;
  // Why it stepped down or did not lead (for the log), empty otherwise.
  std::string note;
};

class GroupMember {
 public:
  // kInvalidArgument naming the field. `coordinator` must outlive the
  // member. Nothing is contacted before the first Tick.
  static Result<std::unique_ptr<GroupMember>> Open(Coordinator& coordinator,
                                                   GroupMemberOptions options);
  GroupMember(const GroupMember&) = delete;
  GroupMember& operator=(const GroupMember&) = delete;

  // Keeps this node registered, reads the group record, steps down if the
  // record moved on without it, and runs for leader when the rules allow.
  // `now` is read before the call.
  TickReport Tick(Clock::time_point now);

  // Leader only (kFailedPrecondition otherwise). Removes a follower that
  // fell behind, or adds one that caught up (it must hold every committed
  // entry: the caller checks). OK without a write when already so.
  // kInvalidArgument for removing the leader. kAborted when the record
  // changed since this node last wrote it: it has stepped down.
  // kUnavailable: nothing was sent, nothing changed. kTimeout: the write may
  // or may not have happened; it has stepped down (the next Tick finds out
  // and, if still leader in the record, runs again with a new epoch).
  Status ShrinkIsr(const std::string& node, Clock::time_point now);
  Status ExpandIsr(const std::string& node, Clock::time_point now);

  // Steps down and revokes the lease: the liveness key goes at once, so
  // another ISR member takes over without waiting for the TTL.
  Status Leave();

  // Leader in the latest epoch this node read, with no sign of being
  // superseded, and its lease kept alive less than a TTL before `now`.
  bool IsLeader(Clock::time_point now) const;
  // IsLeader and the ISR has at least min_isr members.
  bool CanAck(Clock::time_point now) const;
  // The epoch this node leads in (the log layer tags entries with it);
  // 0 when it does not lead.
  int64_t leader_epoch() const { return leading_ ? view_.epoch : 0; }
  // The highest epoch seen in the record or won: a follower persists it and
  // refuses appends from a lower one (the replication layer does that).
  int64_t highest_epoch() const { return highest_epoch_; }
  // The record as last read or written (epoch 0: none seen yet).
  const GroupState& view() const { return view_; }
  // The leader's listen URL as last read (empty: unknown), for NOT_LEADER
  // answers and for following it.
  const std::string& leader_url() const { return leader_url_; }
  const GroupMemberOptions& options() const { return options_; }

 private:
  GroupMember(Coordinator& coordinator, GroupMemberOptions options);

  void TryCreate(Clock::time_point now, TickReport& report);
  void TryElect(Clock::time_point now, TickReport& report);
  // Commits `next` under `compares`; on success this node leads it.
  void WinIfCommitted(const GroupState& next, std::vector<Compare> compares, TickReport& report);
  Status ChangeIsr(const GroupState& next);
  // Stops leading; returns whether it led.
  bool StepDown();
  std::string BrokerKeyOf(const std::string& node) const;

  Coordinator& coordinator_;
  const GroupMemberOptions options_;
  const std::string state_key_;
  NodeLease lease_;
  GroupState view_;
  Revision view_revision_ = 0;  // the record's mod revision in view_; 0: absent
  bool leading_ = false;
  LeaseId leading_lease_ = 0;  // the lease this node held when it won
  int64_t highest_epoch_ = 0;
  std::string leader_url_;
};

}  // namespace txmq::cluster
