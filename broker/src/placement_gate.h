// The core thread's side of placement (DESIGN.md "Cluster: placement of
// queues on groups"): which queues of a topic this node's group serves,
// and what happens to a send or a half that names a topic whose
// placement is not known yet or whose queue another group serves.
//
// Without a cluster (no replicator) the gate is inactive: every topic is
// the broker's, all of its queues. In a cluster every topic a client
// sends to is placed, also when the cluster has one group, so that a group
// joining later finds every older topic's queues where their data is.
//
// - Placement known, the message's queue served here: serve.
// - Placement known, its queue served by another group: WRONG_GROUP naming
//   that group's leader (nothing stored; the producer routes by placement
//   and asks the route again).
// - No placement yet: the placement thread stores one
//   (cluster/placement_thread.h) while the request waits here, parked, to
//   be served as if it arrived once the placement is known. Nothing waits
//   on etcd on this thread. A parked request that is not placed within
//   kParkLimit is answered UNAVAILABLE with the reason (etcd unreachable,
//   say); one whose placement failed, with the error.
//
// A queue moved to another group (DESIGN.md "Moving a queue between
// groups") is still served here for delivery while this group holds older
// messages of it (ServedQueues), and sends of it are refused WRONG_GROUP
// as for any queue of another group. The group it moved to holds back its
// newer messages from a consumer group until the old group reported that
// consumer group drained (HeldBack).
//
// Thread safety: the core thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/src/cluster/placement.h"
#include "broker/src/round_replicator.h"
#include "broker/src/topics.h"
#include "protocol/src/util.h"
#include "txmq/status.h"

namespace txmq::broker {

class PlacementGate final : public TopicPlacementSource {
 public:
  // Inactive when `replicator` is null.
  explicit PlacementGate(RoundReplicator* replicator)
      : replicator_(replicator), group_(replicator ? replicator->group() : "") {}

  bool active() const { return replicator_ != nullptr; }

  struct Decision {
    enum class Kind { kServe, kPark, kRefuse } kind = Kind::kServe;
    Status status{};         // kRefuse: why (kWrongGroup names the group)
    std::string leader_url;  // kWrongGroup: the serving group's leader ("" unknown)
  };
  // A send or half of `topic` whose (first) message has `key`.
  // `queues_here` is the topic's queue count on this node (0: not here
  // yet); `default_queues` what a new one gets.
  Decision Admit(std::string_view topic, std::string_view key, uint32_t queues_here,
                 uint32_t default_queues);

  // The topic's placement when known (null otherwise, and when inactive).
  std::shared_ptr<const cluster::TopicPlacement> Known(std::string_view topic);
  // The lookup Admit does, for a route request: the placement, or null and
  // OK while it is being stored, or the error of storing it.
  cluster::PlacementLookup Lookup(std::string_view topic, uint32_t queue_count);

  // TopicPlacementSource (topics.h): the placed queue count and the
  // queues of a placed topic this group delivers: its own and those that
  // moved away from it (their older messages are read here).
  std::optional<Served> ServedQueues(std::string_view topic) override;
  uint64_t version() override;
  // TopicPlacementSource: whether consumer group `group` must not be handed queue `queue` of
  // `topic` here yet: the queue moved here and the group it left has not
  // reported `group` drained (no report yet: every group waits).
  bool HeldBack(std::string_view topic, uint32_t queue, std::string_view group) override;
  std::optional<Draining> DrainingOf(std::string_view topic, uint32_t queue) override;

  // Keeps `resume` until the move asked for with `ticket` (RoundReplicator::
  // RequestMove) was written or refused, or kParkLimit passed (UNAVAILABLE).
  void ParkMove(uint64_t ticket, SteadyTime now,
                std::function<void(Result<cluster::QueueMoves>)> resume);

  // Keeps `resume` until the placement of `topic` is known (resume(OK)),
  // failed (resume(error)) or kParkLimit passed (resume(UNAVAILABLE)).
  // More than kMaxParked waiting: resume(OVERLOADED) at once.
  void Park(std::string topic, SteadyTime now, std::function<void(const Status&)> resume);
  // Resumes the parked requests whose topic is decided or whose time ran
  // out. Called when the replicator's event fires and at housekeeping.
  void ResumeParked(SteadyTime now);
  bool has_parked() const { return !parked_.empty() || !moves_.empty(); }

  static constexpr std::chrono::seconds kParkLimit{5};
  static constexpr size_t kMaxParked = 10000;

 private:
  struct Parked {
    std::string topic;
    SteadyTime deadline;
    std::function<void(const Status&)> resume;
  };

  struct ParkedMove {
    uint64_t ticket;
    SteadyTime deadline;
    std::function<void(Result<cluster::QueueMoves>)> resume;
  };
  // Forgets the placements looked up before a map read that changed some.
  void Revalidate();

  RoundReplicator* const replicator_;
  const std::string group_;  // this node's (fixed for its life)
  // Placements change only when a queue moves, so each is fetched from the
  // thread's map once per placement version.
  std::map<std::string, std::shared_ptr<const cluster::TopicPlacement>, std::less<>> known_;
  uint64_t known_version_ = 0;
  std::deque<Parked> parked_;
  std::deque<ParkedMove> moves_;
};

}  // namespace txmq::broker
