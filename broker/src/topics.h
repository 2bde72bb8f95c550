// Topics and their queues: which exist, how many queues each has, and for
// every queue the range of offsets that is stored and visible.
//
// Offsets are assigned in order on the core thread when a message joins the
// open round. A message becomes visible to consumers only when its round is
// durable (MarkDurable), and rounds finish in order, so each queue's visible
// offsets are always a prefix of its assigned ones.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "broker/src/core.h"
#include "storage/src/records.h"
#include "txmq/status.h"

namespace txmq::broker {

// The most queues a topic may have.
inline constexpr uint32_t kMaxQueues = 1024;

struct QueueState {
  uint64_t min_offset = 0;     // first offset still stored (retention moves it)
  uint64_t next_offset = 0;    // next offset to assign
  uint64_t visible_end = 0;    // offsets below are durable and deliverable
  bool in_open_round = false;  // appended to since the last SealRound
  uint64_t bytes_in = 0;       // body bytes appended since start (metrics)
};

struct TopicState {
  std::string name;
  uint32_t id = 0;  // the store's name for it
  int64_t created_ms = 0;
  // Whose per-principal count it is part of (RequestContext::creator; "":
  // none, also for the broker's own topics and older entries).
  std::string creator;
  std::vector<QueueState> queues;
  uint32_t round_robin = 0;
  // In a cluster, the queues this node's group serves (placement_gate.h);
  // empty: all of them (a single broker, a broker's own topic).
  std::vector<uint32_t> served;
  bool placement_checked = false;  // `served` was asked of the placement
  uint64_t placement_version = 0;  // ... at this version of it
};

// What a cluster's placement says about a topic (placement_gate.h).
class TopicPlacementSource {
 public:
  virtual ~TopicPlacementSource() = default;
  struct Served {
    uint32_t queue_count = 0;
    std::vector<uint32_t> queues;     // served by this node's group
    std::vector<std::string> groups;  // every queue's group
  };
  // Nullopt: the topic is not placed (a single broker, a broker's own
  // topic, or not yet).
  virtual std::optional<Served> ServedQueues(std::string_view topic) = 0;
  // Grows when placements may have changed (a queue moved): `served` is
  // asked again.
  virtual uint64_t version() { return 0; }
  // Whether consumer group `group` waits before reading `queue` here (it
  // moved here and the group it left still delivers its older messages).
  virtual bool HeldBack(std::string_view /*topic*/, uint32_t /*queue*/,
                        std::string_view /*group*/) {
    return false;
  }
  // A queue whose older messages are still read from the group it moved
  // from: that group, and the consumer groups it last reported owing them
  // (nullopt: no report yet). Nullopt when the queue is not draining.
  struct Draining {
    std::string from;
    std::optional<std::vector<std::string>> pending;
  };
  virtual std::optional<Draining> DrainingOf(std::string_view /*topic*/, uint32_t /*queue*/) {
    return std::nullopt;
  }
};

class TopicManager {
 public:
  explicit TopicManager(Core& core) : core_(core) {}
  // A cluster node's placement (null: none); set before any request.
  void set_placement(TopicPlacementSource* placement) { placement_ = placement; }
  TopicPlacementSource* placement() const { return placement_; }

  // Loads topic records and finds each queue's first and next offsets.
  Status Recover();

  TopicState* Find(std::string_view name);
  TopicState* FindById(uint32_t id);
  // NOT_FOUND for a topic `name` that Find does not know, naming the
  // existing topic it may be a typo of.
  Status Missing(const std::string& name) const;
  // An existing topic, or a new one (recorded in the open round, with
  // `creator`) when `create` allows it; NOT_FOUND otherwise. `queues` 0 =
  // the default, or in a cluster the placed count (FAILED_PRECONDITION
  // when `queues` asks for another).
  Result<TopicState*> GetOrCreate(std::string_view name, bool create, uint32_t queues = 0,
                                  std::string_view creator = {});
  // Whether the caller of `ctx` may create topic `name` now: the broker's
  // and its principal's limits (Limits::AdmitTopic).
  // Topics reserved (below) and not yet created count as existing, and
  // towards their first reserver's share.
  Status AdmitNew(std::string_view name, const RequestContext& ctx, bool take_token = true);
  // A topic an open transaction's commit will create (a half named it when
  // it did not exist): it counts against the topic limits from now on, as
  // the commit itself cannot be refused. One Unreserve per Reserve.
  void Reserve(std::string_view name, std::string_view creator);
  void Unreserve(std::string_view name);
  // Topics that exist, by the principal that created them.
  const CreatorCounts& created_by() const { return created_by_; }

  // Deletes a topic: it leaves memory now, and its entry leaves the store
  // in the open round, with the highest topic id used so far (ids are
  // never reused: a topic created later under the same name is a new one,
  // whose offsets start at 0, and what the store still holds of the old
  // one is swept by id: topic_sweeper.h). Callers first drop whatever
  // names the topic (cursors, retries).
  void Remove(std::string_view name);
  static constexpr std::string_view kNextIdMeta = "next-topic-id";

  // The first offset of `queue` whose message was stored at or after
  // `time_ms` (its visible end if none): a binary search, as stored times
  // never decrease along a queue.
  uint64_t FirstStoredAtOrAfter(const TopicState& topic, uint32_t queue, int64_t time_ms);

  // hash(key) % queues with a key, else round robin over the queues this
  // node serves.
  uint32_t SelectQueue(TopicState& topic, std::string_view key);

  // Stores a message at the end of a queue in the open round. Returns its
  // offset; it becomes visible when the round is durable (SealRound).
  uint64_t Append(TopicState& topic, uint32_t queue, const storage::MessageView& message);

  // Before the open round is submitted: makes every queue appended to in it
  // visible up to its current end once the round is durable.
  void SealRound();

  // Topics that got new visible messages since the last call.
  std::set<std::string> TakeAdvanced();

  const std::map<std::string, TopicState, std::less<>>& all() const { return topics_; }
  std::map<std::string, TopicState, std::less<>>& all() { return topics_; }
  uint64_t MessagesStored() const;
  // The queues of `topic` this node's group serves (empty: all of them).
  const std::vector<uint32_t>& Served(TopicState& topic) {
    CheckPlacement(topic);
    return topic.served;
  }

 private:
  // Fills topic.served from the placement once it is known.
  void CheckPlacement(TopicState& topic);

  Core& core_;
  TopicPlacementSource* placement_ = nullptr;
  std::map<std::string, TopicState, std::less<>> topics_;
  CreatorCounts created_by_;
  struct Reservation {
    uint32_t holders = 0;
    std::string creator;  // of the first holder
  };
  std::map<std::string, Reservation, std::less<>> reserved_;
  std::map<uint32_t, TopicState*> by_id_;
  uint32_t next_id_ = 1;
  std::set<std::string> advanced_;
  // Queues appended to in the open round (by topic id: a topic may be
  // deleted before its round is durable).
  std::vector<std::pair<uint32_t, uint32_t>> touched_;
};

}  // namespace txmq::broker
