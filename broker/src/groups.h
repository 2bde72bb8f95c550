// Consumer-group state: per (group, topic, queue) a cursor, per group the
// redelivery schedule, and the leases that say which consumer holds which
// message until when.
//
// A cursor hands out offsets in order (next) and keeps the leased ones; its
// floor is the lowest offset not yet finished (the first leased one, else
// next). Only the floor is persisted: after a restart everything from the
// floor on is delivered again (at-least-once), nothing below it.
//
// A message that fails (nack, expired lease, consumer gone) leaves the
// cursor at once, so one slow message never holds back a queue: it becomes
// a retry entry (ordered by due time) that points at its queue offset, and
// is delivered again when due, with its delivery count.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/src/core.h"
#include "broker/src/topics.h"
#include "protocol/src/util.h"
#include "storage/src/records.h"

namespace txmq::broker {

struct Lease {
  uint64_t lease_id = 0;
  std::string client;  // routing id of the connection holding it (never shown)
  SteadyTime deadline;
  uint32_t delivery_count = 1;
};

struct QueueCursor {
  const std::string* group = nullptr;  // the owning GroupState's name
  const std::string* topic = nullptr;  // the owning subscription's topic
  uint32_t queue = 0;
  uint64_t next = 0;
  uint64_t persisted_floor = UINT64_MAX;
  bool dirty = false;
  std::map<uint64_t, Lease> leased;  // offset -> lease
  uint64_t expired = 0;  // offsets retention deleted before they were handed out (since start)
  // Ownership (queue_owners.h): the consumer connection (routing id) the
  // queue's messages go to, and how many leases on the queue each client
  // holds now (fresh messages and redeliveries), kept by GroupTable.
  std::string owner;
  std::map<std::string, uint32_t, std::less<>> holders;

  uint64_t floor() const { return leased.empty() ? next : leased.begin()->first; }
};

// A consumer connection sharing a topic's queues (queue_owners.h).
struct Member {
  // When it last pulled the topic for the group or extended a lease on it.
  SteadyTime seen{};
  // The client instance it is a connection of: across broker groups the
  // queues are shared among instances.
  std::string instance;
};

struct Subscription {
  std::vector<QueueCursor> queues;
  uint32_t next_queue = 0;  // where the next pull starts, for fairness
  // The consumers the queues are shared among, by routing id.
  std::map<std::string, Member, std::less<>> members;
  // The queues shared among them: those this node serves (empty: all).
  std::vector<uint32_t> shared;
};

struct RetryEntry {
  uint64_t id = 0;
  int64_t due_ms = 0;
  storage::RetryRecord record;
  std::optional<Lease> lease;

  // Where the message's bytes are: its queue, or the copy it is read from.
  storage::Location Source() const;
};

struct GroupState {
  std::string name;
  // Whose per-principal count it is part of (RequestContext::creator; ""
  // for none, and for a group older than the record) and when it began;
  // recorded by GroupTable::Create.
  std::string creator;
  int64_t created_ms = 0;
  std::map<std::string, Subscription, std::less<>> subscriptions;
  std::map<uint64_t, RetryEntry> retries;      // by retry id
  uint64_t dead_lettered = 0;                  // moved to its DLQ since start (metrics)
  std::set<std::pair<int64_t, uint64_t>> due;  // (due_ms, retry id) of entries not leased
  // Retention (NoteExpired): messages deleted before the group received
  // them, since start; how many of them no log line named yet, the latest
  // stretch ("orders/0 offsets 2..4"), and when the last line was written.
  uint64_t expired = 0;
  uint64_t expired_unlogged = 0;
  std::string expired_latest;
  SteadyTime expiry_logged{};
};

// Where a lease lives, for expiry and client removal.
struct LeaseRef {
  GroupState* group = nullptr;
  QueueCursor* cursor = nullptr;  // null for a retry entry
  uint64_t offset = 0;
  uint64_t retry_id = 0;
  std::string topic;
  uint32_t queue = 0;
  std::string client;
  SteadyTime deadline;
};

class GroupTable {
 public:
  GroupTable(Core& core, TopicManager& topics);

  Status Recover();

  // The group, made in memory if it is new (its cursors and redeliveries
  // are what the store keeps of it then).
  GroupState& Get(const std::string& group);
  GroupState* Find(std::string_view group);
  // Whether the caller of `ctx` may begin group `name` now: the broker's
  // and its principal's limits (Limits::AdmitGroup).
  Status AdmitNew(std::string_view name, const RequestContext& ctx);
  // Begins a group for a client's pull: recorded in the open round with
  // its creator, whose per-principal count it then is part of.
  GroupState& Create(const std::string& name, std::string_view creator);
  const CreatorCounts& created_by() const { return created_by_; }
  // The groups reading `topic` (with a subscription to it); null if none.
  const std::set<GroupState*>* ReadersOf(std::string_view topic) const {
    auto it = readers_.find(topic);
    return it == readers_.end() ? nullptr : &it->second;
  }
  // The group's cursors on a topic, created at the topic's start (or end,
  // with `from_latest`) the first time; null when the topic does not exist.
  Subscription* Subscribe(GroupState& group, const TopicState& topic, bool from_latest);

  // Sets up a subscription's cursors at the topic's start (or end).
  void InitCursors(const GroupState& group, const std::string& topic_name, const TopicState& topic,
                   bool from_latest, Subscription& sub);

  // Retention moved the start of `queue` of `topic` from `old_start` to
  // `new_start`: what each group reading the topic had not received there
  // is counted (its cursor, the group, Counters::expired_unconsumed).
  // Costs the groups reading the topic, not all groups.
  void NoteExpired(const TopicState& topic, uint32_t queue, uint64_t old_start, uint64_t new_start);
  // After a retention tick: one log line per group that lost messages,
  // at most one every 10 s per group (what waits is told in a later call).
  void LogExpired();

  // Cursor moved: its floor may need persisting.
  void MarkDirty(QueueCursor& cursor);
  // Writes changed floors into the open round (before it is submitted).
  void FlushDirty();

  // Operators (lifecycle_service.h). Each forgets the leases involved (their
  // receipts then count as expired) and deletes the stored state in the
  // open round.
  // The group's cursors on `topic`; returns the leases dropped.
  uint32_t DropSubscription(GroupState& group, const std::string& topic);
  // One redelivery entry; true if it was leased.
  bool DropRetry(GroupState& group, uint64_t retry_id);
  // The whole group: cursors, redeliveries, leases.
  void Erase(const std::string& group);

  uint64_t NewLeaseId() { return next_lease_id_++; }
  uint64_t NewRetryId() { return next_retry_id_++; }

  // Leases by deadline, and where each lives. Both keep the queue's
  // holders; a removal that leaves a queue to its owner alone notes a
  // hand-off of the group.
  void AddLease(const LeaseRef& ref, uint64_t lease_id);
  void RemoveLease(uint64_t lease_id);
  // The cursor of the queue a lease is on (a redelivery's too); null when
  // the group no longer reads that topic.
  QueueCursor* CursorOf(const LeaseRef& ref);
  QueueCursor* CursorOf(GroupState& group, std::string_view topic, uint32_t queue);

  // Groups where a queue may have become takeable for its owner (its last
  // other holder let go, or the owners changed), since the last Take.
  void NoteHandoff(const std::string& group) { handoffs_.insert(group); }
  bool has_handoffs() const { return !handoffs_.empty(); }
  std::set<std::string> TakeHandoffs() { return std::exchange(handoffs_, {}); }
  // The lease record behind `ref`: in its cursor, or in its retry entry.
  Lease& LeaseOf(const LeaseRef& ref);
  // Moves a lease's deadline wherever it is kept.
  void ExtendLease(uint64_t lease_id, SteadyTime deadline);
  std::set<std::pair<SteadyTime, uint64_t>>& lease_deadlines() { return lease_deadlines_; }
  const std::set<std::pair<SteadyTime, uint64_t>>& lease_deadlines() const {
    return lease_deadlines_;
  }
  std::unordered_map<uint64_t, LeaseRef>& leases() { return leases_; }

  std::map<std::string, GroupState, std::less<>>& all() { return groups_; }

 private:
  Core& core_;
  TopicManager& topics_;
  std::map<std::string, GroupState, std::less<>> groups_;
  CreatorCounts created_by_;
  // Topic name -> the groups with a subscription to it (NoteExpired).
  std::map<std::string, std::set<GroupState*>, std::less<>> readers_;
  std::set<GroupState*> expiry_unlogged_;  // groups with expired_unlogged > 0
  std::vector<QueueCursor*> dirty_;
  std::set<std::pair<SteadyTime, uint64_t>> lease_deadlines_;
  std::unordered_map<uint64_t, LeaseRef> leases_;
  std::set<std::string> handoffs_;
  uint64_t next_lease_id_ = 1;  // set by Recover
  uint64_t next_retry_id_ = 1;
};

}  // namespace txmq::broker
