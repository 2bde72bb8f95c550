// Placements as the cluster stores them in etcd, and the map a router
// needs: for every topic the group of each queue, for every group its
// leader and where clients reach it (DESIGN.md "Cluster: placement of
// queues on groups").
//
// A placement is written once, by whoever creates the topic first: a
// transaction on the key's absence, so two brokers creating one topic at
// once agree on the first one's placement, never on two. It lists the
// groups that have a state record at that moment (a group is part of the
// cluster once its first node won an election); a group that is down
// still gets its share, and its queues fail until it is back: keys are
// never re-hashed onto another group behind their writers' backs.
//
// Thread safety: free functions; safe from any thread the coordinator is.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "broker/src/cluster/coordinator.h"
#include "broker/src/cluster/group_state.h"
#include "broker/src/cluster/placement.h"
#include "txmq/status.h"

namespace txmq::cluster {

// The groups a new topic is placed on: each with a state record, sorted by
// name, with the weight its nodes published (1 when none did, or when the
// record cannot be read).
Result<std::vector<GroupWeight>> ListGroups(Coordinator& coordinator, const std::string& cluster);

// A group's weight (txmqd --group-weight, 1 to kMaxGroupWeight): its share
// of the queues of topics placed from now on, relative to the other
// groups'. Stored placements never move. Stored without a lease under
// GroupWeightKey, so it outlives the nodes; each node writes it when it
// starts, the same on every node of a group. Returns the weight stored
// before (0 when there was none); writes nothing when it is unchanged.
constexpr uint32_t kMaxGroupWeight = 1000;
std::string GroupWeightKey(const std::string& cluster, const std::string& group);
Result<uint32_t> PublishGroupWeight(Coordinator& coordinator, const std::string& cluster,
                                    const std::string& group, uint32_t weight);

// The topic's stored placement; if it has none, `queue_count` queues
// placed on ListGroups and stored, unless another writer got there first
// (then theirs). A stored placement is returned as it is, also when its
// queue count is not `queue_count`: the caller says so. Errors:
// kFailedPrecondition when the cluster has no group yet, kCorruption for a
// record that cannot be read (naming its key), the coordinator's
// kUnavailable / kTimeout when etcd cannot be asked.
Result<TopicPlacement> EnsurePlacement(Coordinator& coordinator, const std::string& cluster,
                                       const std::string& topic, uint32_t queue_count);

// Where a group is served, as the records said when read.
struct GroupRoute {
  GroupState state;        // epoch, leader, ISR
  std::string leader_url;  // the leader's client URL; "" when it is not registered (down)
  // Every registered (live) node's client URL, the leader's first: a
  // client given them follows the group's leader by itself.
  std::vector<std::string> node_urls;
};

struct ClusterMap {
  std::map<std::string, GroupRoute> groups;      // by group name
  std::map<std::string, TopicPlacement> topics;  // by topic name
  // What the group a queue moved from last reported: the consumer groups
  // that have not read all it holds of the queue (empty: drained).
  std::map<QueueGeneration, std::vector<std::string>> drains;
  // Records that could not be read, one line each (key: why); the rest of
  // the map is still good.
  std::vector<std::string> unreadable;

  // The group serving `queue` of `topic` and that group's route; nullptr
  // when the topic has no placement or the queue is out of range. The
  // route is null when the group has no state record.
  struct QueueRoute {
    const std::string* group = nullptr;
    const GroupRoute* route = nullptr;
  };
  QueueRoute Route(const std::string& topic, uint32_t queue) const;
};

// Moves queue `queue` of `topic` to group `to` (txmqctl topic move): the
// placement names `to` for the queue, its generation grows by one, and its
// drain_from names the group it left. A transaction on the record's
// revision (read again and retried when another writer got between).
// Errors name the bad value: kNotFound (the topic is not placed),
// kInvalidArgument (no such queue; `to` has no state record),
// kFailedPrecondition (the queue is on `to` already; the queue's last move
// is still draining, naming the consumer groups it waits for), or the
// coordinator's.
// `write` false: checked and returned, not written (a dry run).
Result<QueueMoves> MoveQueue(Coordinator& coordinator, const std::string& cluster,
                             const std::string& topic, uint32_t queue, const std::string& to,
                             bool write = true);

// Moves every queue of `topic` whose placement on the groups there are now
// (PlaceQueues with ListGroups) differs from the stored one, as MoveQueue
// moves one, in one transaction: after a group joined, about its share of
// the topic's queues go to it. Nothing moved when none differ. Refused
// (kFailedPrecondition, naming them) while a queue that would move is
// still draining from its last move.
Result<QueueMoves> RebalanceTopic(Coordinator& coordinator, const std::string& cluster,
                                  const std::string& topic, bool write = true);

// Stops waiting for the group queue `queue` of `topic` last moved from
// (txmqctl topic move --release; for a group gone for good, whose drain
// report will never come): its drain_from is cleared, so the group it
// went to holds nothing back and routes no longer name the old one, which
// stops serving the queue; what it still holds of it is not delivered.
// kInvalidArgument (no such queue), kFailedPrecondition (the queue is not
// draining; that group still has a registered, live node, unless
// `force`), kNotFound (the topic is not placed), or the coordinator's.
// `write` false: checked and returned, not written.
Result<QueueMoves> ReleaseDrain(Coordinator& coordinator, const std::string& cluster,
                                const std::string& topic, uint32_t queue, bool write = true,
                                bool force = false);

// Deletes the stored placement of `topic` with its queues' drain reports,
// in one transaction on the record's revision (txmqctl topic delete, once
// every group's part of the topic is gone): the name can be placed anew,
// with another queue count too. Returns the record deleted (`moved`
// empty). kNotFound when the topic is not placed. `write` false: read and
// returned, not deleted.
Result<QueueMoves> ForgetPlacement(Coordinator& coordinator, const std::string& cluster,
                                   const std::string& topic, bool write = true);

// /txmq/<cluster>/drain/<queue>/<generation>/<topic> = {"pending": [...]}:
// written by the leader of the group a queue moved from, whenever the
// consumer groups it still owes messages change.
std::string DrainPrefix(const std::string& cluster);
std::string DrainKey(const std::string& cluster, const QueueGeneration& q);
std::string EncodeDrainReport(const std::vector<std::string>& pending);
Result<std::vector<std::string>> DecodeDrainReport(const std::string& json);

// Four prefix reads (groups, brokers, placements, drain reports). They are not one
// snapshot of the store: a route may be a moment old, which brokers
// answer with NOT_LEADER naming where to go.
Result<ClusterMap> ReadClusterMap(Coordinator& coordinator, const std::string& cluster);

}  // namespace txmq::cluster
