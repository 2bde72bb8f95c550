// What the broker's core needs from replication (a cluster node,
// broker/src/cluster/cluster_node.h): a place to hand each written round,
// and word of when it is committed, so its completions (replies,
// visibility to consumers) run only then. Without one (a single node)
// completions run when the store has the round, as always.
//
// Thread safety: ReplayCommittedRounds and Replicate are called by the
// broker's opening and core thread only; committed,
// failure, event and health from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/src/cluster/cluster_health.h"
#include "broker/src/cluster/placement.h"
#include "protocol/src/cluster_status_codec.h"
#include "protocol/src/event_fd.h"
#include "txmq/status.h"

namespace txmq::broker {

class RoundReplicator {
 public:
  virtual ~RoundReplicator() = default;
  // Once, when the broker opens: calls `apply` with each committed round
  // (its payload, replicated_round.h) after the first `after` (those the
  // store holds already), oldest first, one at a time (a log may be larger
  // than memory); returns the first error, apply's included.
  virtual Status ReplayCommittedRounds(
      uint64_t after, const std::function<Status(std::string_view payload)>& apply) = 0;
  // Takes one round's payload (replicated_round.h) for the replicated
  // log; returns its ticket: 1, 2, ... in call order.
  virtual uint64_t Replicate(std::string payload) = 0;
  // Returns once the round with `ticket` is in this node's replica log
  // (written, not necessarily synced): OK; or once replication failed or
  // stopped: why it never will be. Any thread.
  virtual Status WaitAppended(uint64_t /*ticket*/) { return Status::OK(); }
  // Every round with a ticket up to this is committed.
  virtual uint64_t committed() const = 0;
  // The replica entry a committed round became (its index in the log and
  // its chain crc), while the ticket is among the last kCommittedKept
  // committed; none otherwise.
  struct Entry {
    uint64_t index = 0;
    uint32_t crc = 0;
  };
  virtual std::optional<Entry> CommittedEntry(uint64_t /*ticket*/) const { return std::nullopt; }
  static constexpr size_t kCommittedKept = 1 << 16;
  // Non-OK once nothing more will commit through this node (it stopped
  // leading): rounds still waiting fail with it and the broker stops.
  virtual Status failure() const = 0;
  // Raised when committed() moved or failure() was set.
  virtual EventFd& event() = 0;
  // The group as the node last saw it (cluster status, topic show's
  // group and leader); null when there is none to show.
  virtual std::shared_ptr<const cluster::HealthBoard> health() const { return nullptr; }

  // Placement (DESIGN.md "Cluster: placement of queues on groups"), any
  // thread: the group this node serves; a topic's placement from the
  // node's last map, or a request to store one with `queue_count` queues
  // (cluster/placement_thread.h: null and OK while it is stored); a
  // group's leader's client URL from that map ("" unknown). event() fires
  // when a placement was stored.
  virtual std::string group() const { return ""; }
  virtual cluster::PlacementLookup LookupPlacement(const std::string& /*topic*/,
                                                   uint32_t /*queue_count*/) {
    return {nullptr, Status::FailedPrecondition("not a cluster node: nothing is placed")};
  }
  virtual std::string LeaderUrlOf(const std::string& /*group*/) const { return ""; }
  // The name of a group's leader from that map ("" unknown).
  virtual std::string LeaderNodeOf(const std::string& /*group*/) const { return ""; }
  // Every group of that map and where clients reach it.
  virtual std::vector<wire::GroupLeaderView> Groups() const { return {}; }

  // Moving queues (DESIGN.md "Moving a queue between groups"), any thread.
  // Grows when the map's placements or drain reports changed: what was
  // looked up before may be stale.
  virtual uint64_t PlacementVersion() const { return 0; }
  // Asks for the move (placement_thread.h); event() fires when its
  // outcome is there to take.
  // (cluster::MoveRequest says what each field asks.)
  virtual uint64_t RequestMove(cluster::MoveRequest /*request*/) { return 0; }
  virtual std::optional<Result<cluster::QueueMoves>> TakeMoveOutcome(uint64_t /*ticket*/) {
    return Result<cluster::QueueMoves>(
        Status::FailedPrecondition("not a cluster node: queues do not move"));
  }
  // The consumer groups that the group a queue moved from has reported it
  // still owes older messages of that move (empty: drained); nullopt when
  // it has reported nothing yet.
  virtual std::optional<std::vector<std::string>> DrainPending(
      const cluster::QueueGeneration& /*moved*/) const {
    return std::nullopt;
  }
  // Every queue of every topic in that map that moved away from this
  // node's group and may still be drained from it.
  virtual std::vector<cluster::QueueGeneration> MovedAway() const { return {}; }
  // This node's group's report of every queue that moved away from it.
  virtual void ReportDrains(std::map<cluster::QueueGeneration, std::vector<std::string>>) {}
};

}  // namespace txmq::broker
