// A node's view of where every topic's queues are served, kept fresh off
// the broker's core thread (DESIGN.md "Cluster: placement of queues on
// groups").
//
// Thread "txmq-placement" owns the coordinator calls: every `poll_every`
// it reads the cluster map (placement_directory.h), and it stores the
// placements that Lookup asked for, one topic at a time, reading the map
// again after each. The core thread never waits for etcd: Lookup answers
// from the last map at once, and a topic that has no placement yet is
// "pending" (the broker tells the client to ask again in a moment) while
// this thread stores one. It also publishes its group's weight, writes the
// queue moves an operator asked for, and the drain reports its group's
// leader computes (queue_move.cc). Shared under mu_: the map, the topics
// asked for, the moves asked for and their outcomes, the drain reports,
// the last error per topic and of the last poll.
//
// Thread safety: every public method may be called from any thread; the
// destructor stops and joins the thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "broker/src/cluster/coordinator.h"
#include "broker/src/cluster/placement_directory.h"
#include "txmq/status.h"

namespace txmq::cluster {

class PlacementThread {
 public:
  // `on_placed` (optional) runs on this thread after a placement asked for
  // was stored and the map has it (or storing it failed), so that the
  // asker can look again. `weight` (optional: a group named) is this
  // node's group and its --group-weight, published before the first read
  // and again at each poll until etcd took it.
  PlacementThread(std::unique_ptr<Coordinator> coordinator, std::string cluster,
                  std::chrono::milliseconds poll_every, std::function<void()> on_placed = nullptr,
                  GroupWeight weight = {"", 0});
  ~PlacementThread();
  PlacementThread(const PlacementThread&) = delete;
  PlacementThread& operator=(const PlacementThread&) = delete;

  // The topic's placement from the last map; without one, a request to
  // store one with `queue_count` queues (0: only a look) and null. When
  // the last try failed: its error, to every look and to one lookup that
  // asks (the lookup after that tries again).
  PlacementLookup Lookup(const std::string& topic, uint32_t queue_count);
  // The last map read (empty before the first read).
  std::shared_ptr<const ClusterMap> map() const;
  // Blocks the caller until a map newer than the current one has been read
  // or `timeout` passed; true when it was.
  bool WaitForFreshMap(std::chrono::milliseconds timeout);
  // Why the last poll failed (OK when it did not).
  Status coordinator_error() const;
  // Grows whenever a map read finds placements or drain reports changed.
  uint64_t placement_version() const;

  // Asks for queue `queue` of `topic` to move to group `to` (MoveQueue);
  // the ticket's outcome is there for TakeMoveOutcome once the move was
  // written or refused (on_placed runs then), the map having it.
  // `queue` kEveryQueue: RebalanceTopic instead; `release`: ReleaseDrain
  // of the queue instead; `write` false: what would be written.
  uint64_t RequestMove(MoveRequest request);
  std::optional<Result<QueueMoves>> TakeMoveOutcome(uint64_t ticket);
  // What this node's group owes now of queues that moved away from it
  // (its leader's core computes it): written to etcd at the next poll
  // where it differs from what was written last.
  void ReportDrains(std::map<QueueGeneration, std::vector<std::string>> reports);

 private:
  void Loop();
  void Refresh();
  // True once the weight is stored (or there is none to store).
  bool PublishWeight();
  void WriteDrainReports();
  struct MoveAsked {
    uint64_t ticket;
    MoveRequest request;
  };

  const std::unique_ptr<Coordinator> coordinator_;  // this thread's alone
  const std::string cluster_;
  const std::chrono::milliseconds poll_every_;
  const std::function<void()> on_placed_;
  const GroupWeight weight_;
  bool weight_published_ = false;  // this thread's alone
  bool weight_warned_ = false;     // this thread's alone

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable refreshed_;
  std::shared_ptr<const ClusterMap> map_;               // guarded by mu_
  uint64_t map_reads_ = 0;                              // guarded by mu_
  std::deque<std::pair<std::string, uint32_t>> asked_;  // guarded by mu_
  std::map<std::string, Status> failed_;                // by topic; guarded by mu_
  // Written under mu_; read without it (every send asks).
  std::atomic<uint64_t> placement_version_{0};
  std::deque<MoveAsked> moves_;    // guarded by mu_
  uint64_t next_move_ticket_ = 1;  // guarded by mu_
  static constexpr size_t kKeptMoveOutcomes = 64;
  std::map<uint64_t, Result<QueueMoves>> moved_;                // by ticket; guarded by mu_
  std::map<QueueGeneration, std::vector<std::string>> drains_;  // to write; mu_
  // What this thread last wrote of each report (it writes only changes).
  std::map<QueueGeneration, std::vector<std::string>> drains_written_;    // this thread's
  Status coordinator_error_ = Status::Unavailable("etcd not asked yet");  // mu_
  bool stop_ = false;                                                     // guarded by mu_
  std::thread thread_;
};

}  // namespace txmq::cluster
