// Where a topic's queues live when a cluster has more than one broker
// group (DESIGN.md "Cluster: placement of queues on groups").
//
// Two maps, both fixed functions that any client or broker can compute
// and that never change with a build or a restart:
//
//   key   -> queue: StableHash(key) % queue_count (FNV-1a 64, the same as a
//                   single broker's, protocol/src/util.h), queue_count
//                   fixed when the topic is created;
//   queue -> group: weighted rendezvous hashing with bounded load, computed
//                   once when the topic is created and then *stored* in
//                   etcd (placement/<topic>), so a group joining later does
//                   not silently move queues that hold data: what is
//                   stored is the truth, the function only proposes it.
//
// Rendezvous: every (topic, queue, group) gets a score, weight / -ln(u)
// with u in (0, 1) from a 64-bit hash of the three (PlacementHash); a
// queue goes to the group scoring highest (ties: the smaller name). Alone
// that spreads queues only as evenly as chance does (8 queues on 3 groups
// come out 5/2/1 often enough), so each group takes at most its share,
// ceil(queues x weight / total weight), and a queue whose first choice is
// full goes to its next. Queues are placed in order, so the result is a
// function of its inputs only. Adding a group moves about queues / groups
// of a new topic's queues compared with the old set (tested), not all.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "txmq/status.h"

namespace txmq::cluster {

struct GroupWeight {
  std::string group;
  uint32_t weight = 1;  // relative share of queues; >= 1
};

// A topic's queue -> group map as stored in etcd.
//
// A queue moved to another group (MoveQueue, placement_directory.h) keeps
// its older messages where they were: the group it left (drain_from[q])
// still delivers them, and the group it went to holds back the newer ones
// from each consumer group until the old group reports that consumer
// group drained (DrainKey). Each move starts a new generation of the
// queue, so the reports of one move never stand for another.
struct TopicPlacement {
  uint32_t queue_count = 0;
  std::vector<std::string> groups{};  // groups[q]: the group that serves queue q
  // Both empty until a queue of the topic moves; then one entry per queue:
  // moves so far (0: where it was placed) and the group the last move
  // left ("" none).
  std::vector<uint32_t> generation{};
  std::vector<std::string> drain_from{};

  uint32_t GenerationOf(uint32_t q) const { return q < generation.size() ? generation[q] : 0; }
  // The group still delivering queue q's older messages; "" when none.
  std::string_view DrainingFrom(uint32_t q) const {
    if (q >= drain_from.size() || drain_from[q] == groups[q]) return {};
    return drain_from[q];
  }
  // Queues that moved from `group` to another: it delivers what it holds
  // of them until every consumer group has read it.
  std::vector<uint32_t> QueuesDrainingFrom(std::string_view group) const {
    std::vector<uint32_t> out;
    for (uint32_t q = 0; q < groups.size(); ++q) {
      if (!group.empty() && DrainingFrom(q) == group) out.push_back(q);
    }
    return out;
  }

  // Queues served by `group`, ascending. (Inline: the broker library uses
  // it without linking the cluster's.)
  std::vector<uint32_t> QueuesOf(std::string_view group) const {
    std::vector<uint32_t> out;
    for (uint32_t q = 0; q < groups.size(); ++q) {
      if (groups[q] == group) out.push_back(q);
    }
    return out;
  }
  // kInvalidArgument when the topic has no queue `queue`.
  Status CheckQueue(std::string_view topic, uint32_t queue) const {
    if (queue < queue_count) return Status::OK();
    return Status::InvalidArgument("topic " + std::string(topic) + " has queues 0-" +
                                   std::to_string(queue_count - 1) + ", not " +
                                   std::to_string(queue));
  }
  // Why queue `queue` cannot move to `to` as this placement stands (no
  // such queue, or it is there already); OK otherwise.
  Status CheckMove(std::string_view topic, uint32_t queue, const std::string& to) const {
    if (Status s = CheckQueue(topic, queue); !s.ok()) return s;
    if (groups[queue] == to) {
      return Status::FailedPrecondition("queue " + std::to_string(queue) + " of topic " +
                                        std::string(topic) + " is served by group " + to +
                                        " already");
    }
    return Status::OK();
  }
  // This placement with queue `queue` moved to `to` (CheckMove passed): a
  // new generation, drained from the group it leaves.
  TopicPlacement Moved(uint32_t queue, const std::string& to) const {
    TopicPlacement p = *this;
    if (p.generation.empty()) {
      p.generation.assign(queue_count, 0);
      p.drain_from.assign(queue_count, "");
    }
    p.drain_from[queue] = p.groups[queue];
    p.groups[queue] = to;
    ++p.generation[queue];
    return p;
  }

  // This placement with queue `queue` no longer draining from the group
  // it left (an operator gave up on that group): its generation stays.
  TopicPlacement Released(uint32_t queue) const {
    TopicPlacement p = *this;
    if (queue < p.drain_from.size()) p.drain_from[queue] = "";
    return p;
  }

  bool operator==(const TopicPlacement&) const = default;
};

// What a queue move or a topic's rebalance wrote (asked for a dry run:
// would write): the record after it and the queues that moved. A release
// (ReleaseDrain) names its queue in `moved` and the group no longer
// waited for in `released_from`.
struct QueueMoves {
  TopicPlacement placement;
  std::vector<uint32_t> moved;
  std::string released_from{};
};
// A move request's queue meaning "every queue whose placement on today's
// groups differs" (RebalanceTopic).
inline constexpr uint32_t kEveryQueue = UINT32_MAX;

// An operator's change of where a queue is served (txmqctl topic move,
// topic rebalance).
struct MoveRequest {
  std::string topic;
  uint32_t queue = 0;  // kEveryQueue: a rebalance of the topic
  std::string to{};    // a move: the group the queue goes to
  // Instead of a move: stop waiting for the group the queue left
  // (ReleaseDrain); with `force` also while that group has live nodes.
  bool release = false;
  bool force = false;
  bool write = true;  // false: only what would be written
  // Instead of a move: delete the topic's placement (ForgetPlacement).
  bool forget = false;
};

// One move of one queue: what a drain report is about.
struct QueueGeneration {
  std::string topic;
  uint32_t queue = 0;
  uint32_t generation = 0;
  auto operator<=>(const QueueGeneration&) const = default;
};

// What a node knows about a topic's placement now: the placement, or why
// it has none (ok and null: being stored, or nobody asked; look again).
struct PlacementLookup {
  std::shared_ptr<const TopicPlacement> placement;
  Status error;
};

// The 64-bit hash a (topic, queue, group) score comes from: FNV-1a over
// topic, 0x00, the queue number in decimal, 0x00, group; then murmur3's
// 64-bit finalizer, so nearby inputs land far apart. Stable forever (the
// stored placements of older topics do not depend on it, but clients and
// tools that propose one do).
uint64_t PlacementHash(std::string_view topic, uint32_t queue, std::string_view group);

// The placement of a new topic's `queue_count` queues on `groups` (at least
// one; names unique and non-empty; weights >= 1). kInvalidArgument naming
// the bad value otherwise.
Result<TopicPlacement> PlaceQueues(std::string_view topic, uint32_t queue_count,
                                   const std::vector<GroupWeight>& groups);

// /txmq/<cluster>/placement/<topic>, and the prefix of all of them.
std::string PlacementKey(const std::string& cluster, std::string_view topic);
std::string PlacementPrefix(const std::string& cluster);

// {"queues": N, "groups": ["g1", ...]} with one group per queue, and once a
// queue moved "generation": [n, ...] and "from": ["g", ...], one per queue
// too. Decoding ignores unknown fields and refuses any other shape
// (kCorruption naming the key's text).
std::string EncodeTopicPlacement(const TopicPlacement& p);
Result<TopicPlacement> DecodeTopicPlacement(const std::string& json);

}  // namespace txmq::cluster
