// Serves consumers: pull (with long polling), ack and nack; ends leases
// that expire or whose consumer left; sends messages that failed too often
// to the group's dead-letter topic.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/src/core.h"
#include "broker/src/groups.h"
#include "broker/src/topics.h"

namespace txmq::broker {

// The lease a receipt names, if it is still the current one.
const LeaseRef* MatchLease(GroupTable& groups, std::string_view group, wire::Receipt::Reader r);

class Delivery {
 public:
  Delivery(Core& core, TopicManager& topics, GroupTable& groups)
      : core_(core), topics_(topics), groups_(groups) {}

  void HandlePull(const RequestContext& ctx, wire::PullRequest::Reader request);
  void HandleAck(const RequestContext& ctx, wire::AckRequest::Reader request);
  void HandleNack(const RequestContext& ctx, wire::NackRequest::Reader request);
  // Keeps leases alive for their holder; with `failed`, counts a failed
  // delivery and keeps the message leased for a retry in place.
  void HandleExtendLease(const RequestContext& ctx, wire::ExtendLeaseRequest::Reader request);

  // Expired leases, due redeliveries, long-poll timeouts.
  void Tick(SteadyTime now);
  // New messages became visible on these topics: serve parked pulls.
  void OnTopicsAdvanced(const std::set<std::string>& topics);
  // A client left: the connection `routing_id`, logged as `shown_as` (its
  // hello id; the routing id is a secret). `failed`: it vanished (its
  // leases count as failed deliveries); otherwise it said goodbye (leases
  // are given back as is).
  void ReleaseClient(const std::string& routing_id, const std::string& shown_as, bool failed);
  // Schedules a message for the group again, due now, with a fresh
  // delivery count: known to consumers as `as_known`, read from `source`.
  void Redeliver(GroupState& group, const storage::Location& as_known,
                 const storage::Location& source);
  // Broker stopping: answer every parked pull.
  void AnswerParked(const Status& status);
  // Long polls of `group` waiting now.
  size_t ParkedPulls(const std::string& group) const;
  // The group was deleted: its long polls are answered with nothing now
  // (a consumer still running asks again and starts the group over).
  void AnswerParkedOf(const std::string& group);

  // Earliest time Tick has something to do.
  SteadyTime NextWake() const;

 private:
  struct PullSpec {
    std::string group;
    std::vector<std::string> topics;
    uint32_t max_messages = 0;
    std::chrono::milliseconds visibility{0};
    bool from_latest = false;
    std::string client;
    std::string shown_as;  // the client's hello id, for logs (the routing id is secret)
    std::string instance;  // the client instance it is one connection of (queue_owners.h)
  };
  struct Parked {
    std::string routing_id;
    uint64_t request_id = 0;
    PullSpec spec;
    SteadyTime deadline;
  };
  // Long polls (delivery_parked.cc).
  void Park(Parked parked);
  // Removes a parked pull from every index and returns it.
  Parked Unpark(uint64_t id);
  // Serves the parked pull `id` if messages are there for it now; true
  // when it was answered.
  bool TryServeParked(uint64_t id, SteadyTime now);
  // Parked pulls of groups with a due redelivery, and waits that are over.
  void TickParked(SteadyTime now);
  // The client's parked pulls end: answered empty, or (`failed`: it
  // vanished) dropped.
  void ReleaseParked(const std::string& client_id, bool failed);
  struct Item {                     // one message picked for a pull
    storage::StoredMessage stored;  // views into the log
    std::string topic;
    uint32_t queue = 0;
    uint64_t offset = 0;
    uint32_t delivery_count = 1;
    uint64_t retry_id = 0;
    uint64_t lease_id = 0;
  };

  // Queue ownership (queue_owners.h): members that neither pulled nor
  // extended a lease for max_long_poll + client_timeout, and have no pull
  // parked, leave their topics' consumers.
  void SweepIdleMembers(SteadyTime now);
  // `routing_id` is no consumer of any topic any more (`why`, for the log).
  void LeaveAllQueues(const std::string& routing_id, std::string_view why);
  // One log line when a group's consumers of a topic change.
  void LogMembers(const GroupState& g, const std::string& topic, const Subscription& sub,
                  const std::string& who, std::string_view what) const;
  // Parked pulls of groups where a queue may have become takeable.
  void ServeHandoffs(SteadyTime now);

  // A consumer's lease length, or the broker default, within the allowed range.
  std::chrono::milliseconds ClampVisibility(uint32_t requested_ms) const;
  // A consumer's redelivery limit for a message it failed: what it asked
  // for with this failure, else what it said last, else the broker
  // default. Never another consumer's: each consumer's setting is its own.
  uint32_t MaxReconsume(const std::string& client, uint32_t requested) const;
  // Remembers the limit a registered consumer announced (0: the default),
  // for its leases that expire.
  void Announce(const RequestContext& ctx, uint32_t max_reconsume);

  // Picks up to spec.max_messages messages and leases them. A message that cannot be read (damaged
  // in the log) is never served and never skipped: its queue waits there (the store logged it;
  // txmqd --repair takes it out) and `held` says why.
  std::vector<Item> Collect(const PullSpec& spec, SteadyTime now, Status* held = nullptr);
  void CollectRetries(GroupState& g, const PullSpec& spec, SteadyTime now, std::vector<Item>* out,
                      size_t* bytes, Status* held);
  void CollectFresh(GroupState& g, const PullSpec& spec, SteadyTime now, std::vector<Item>* out,
                    size_t* bytes, Status* held);
  void ReplyItems(const std::string& routing_id, uint64_t request_id,
                  const std::vector<Item>& items);

  // Ends one lease because the delivery failed (or is given back).
  // Returns true when the message went to the dead-letter topic.
  bool FailLease(uint64_t lease_id, bool count_attempt, uint32_t delay_ms, uint32_t max_reconsume);
  void ScheduleRetry(GroupState& g, RetryEntry& entry, int64_t due_ms);
  // The message stored at `where`; NOT_FOUND once retention deleted it.
  Result<storage::StoredMessage> Read(const storage::Location& where);
  // Copies the message stored at `source` (known to the group as
  // topic/queue/offset) into the group's dead-letter topic.
  void DeadLetter(GroupState& g, const storage::Location& source, const std::string& topic,
                  uint32_t queue, uint64_t offset, uint32_t delivery_count);
  uint32_t BackoffMs(uint32_t failed_deliveries) const;

  Core& core_;
  TopicManager& topics_;
  GroupTable& groups_;
  // Long polls waiting, by arrival number, with an index per event that
  // wakes them (delivery_parked.cc).
  std::map<uint64_t, Parked> parked_;
  std::set<std::pair<SteadyTime, uint64_t>> parked_by_deadline_;
  std::map<std::string, std::set<uint64_t>, std::less<>> parked_by_topic_;
  std::map<std::string, std::set<uint64_t>, std::less<>> parked_by_group_;
  std::map<std::string, std::set<uint64_t>, std::less<>> parked_by_client_;
  uint64_t next_parked_ = 1;
  SteadyTime next_member_sweep_{};
  // Redelivery limits consumers announced (not 0), by client id; a client
  // is forgotten when it leaves.
  std::unordered_map<std::string, uint32_t> announced_max_reconsume_;
  // Hello ids of consumers that joined a topic's consumers, by routing id
  // (for the log lines of queue ownership); forgotten when they leave.
  std::unordered_map<std::string, std::string> member_names_;
};

}  // namespace txmq::broker
