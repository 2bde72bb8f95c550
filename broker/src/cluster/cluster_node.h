// One txmqd's part in a replicated broker group: the replication thread
// and what it owns, and the RoundReplicator the broker's core hands its
// rounds to (DESIGN.md "Wiring into txmqd: the decisions").
//
// Thread "txmq-replica" owns: the coordinator, the FileReplicaLog, the
// ReplicaFollower, the ReplicationLeader while this node leads, the
// ZmqReplicationTransport (its sockets), and the ticket -> log index map.
// It never calls etcd itself: the GroupMember runs on thread "txmq-member"
// (member_thread.h), ticked every lease TTL / 3, and the replication
// thread takes its events (won, stepped down, ISR changed) and asks it for
// ISR changes, so a slow or absent etcd never stops appends and answers. Shared under mu_: rounds
// handed over by the core thread and not yet appended, the hand-over of
// leadership to main (the committed entries before this epoch), the
// leader's URL, the failure; committed_ and follower_committed_ are
// atomic; the health board has its own lock. The core thread calls Replicate (and the broker's Init
// ReplayCommittedRounds); main calls WaitUntilLeading and leader_url; the
// HTTP workers read the health board.
//
// Life of a node: it follows (answers appends, keeps its log, publishes the
// commit index it learned for the store kept beside it, broker/src/
// standby_store.h) until it wins an election and its epoch-start entry
// commits; then main hands that store to the broker, which writes the
// committed entries it lacks, and whose rounds come through Replicate. If
// it stops leading after that, failure() is set for good (the broker
// stops and txmqd exits; restarted, it follows).
//
// Thread safety: as above; the destructor stops and joins the thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broker/src/cluster/cluster_health.h"
#include "broker/src/cluster/placement_thread.h"
#include "broker/src/cluster/zmq_transport.h"
#include "broker/src/round_replicator.h"
#include "protocol/src/event_fd.h"
#include "txmq/status.h"

namespace txmq::cluster {

struct ClusterNodeOptions {
  // etcd client URLs: one etcd, or the members of one etcd cluster.
  std::vector<std::string> etcd_endpoints;
  std::string cluster;
  std::string group;
  std::string node;
  // Where clients reach this node (its --listen, port resolved): stored in
  // its liveness key, named in answers of the nodes that do not lead.
  std::string client_url;
  // Where this node's replication ROUTER binds, and the group's other
  // members with theirs.
  std::string replication_bind;
  std::vector<ZmqPeer> peers;
  // This node's Z85 CURVE secret key for the replication links; with it
  // every peer needs its public_key. Empty: plaintext links.
  std::string replication_secret_key;
  size_t min_isr = 1;
  std::chrono::seconds lease_ttl{3};
  // The group's weight in placements of topics from now on (1 to
  // kMaxGroupWeight, placement_directory.h); stored in etcd at start.
  uint32_t group_weight = 1;
  // An ISR follower that has lacked entries this long is taken out of the
  // ISR (so a dead one stops holding commits back).
  std::chrono::milliseconds max_lag{3000};
  // The replica log's directory.
  std::string log_dir;
  // The store's commit-log segment size (--segment-mb): the same on every
  // node of the group (group_config.h); checked against etcd at start.
  uint64_t segment_bytes = 0;
  // The replica log's tail the page cache keeps (BrokerOptions).
  uint64_t cached_log_bytes = 256ull << 20;
};

class ClusterNode final : public broker::RoundReplicator {
 public:
  // Opens the replica log, binds the transport and starts the thread; the
  // error names what failed (kInvalidArgument for options, kUnavailable
  // for an address that cannot be bound).
  static Result<std::unique_ptr<ClusterNode>> Start(ClusterNodeOptions options);
  ~ClusterNode() override;
  ClusterNode(const ClusterNode&) = delete;
  ClusterNode& operator=(const ClusterNode&) = delete;

  // Main thread. True once this node leads and its epoch-start entry
  // committed (within `timeout`): the broker may open now, and
  // ReplayCommittedRounds has the entries before it.
  bool WaitUntilLeading(std::chrono::milliseconds timeout);
  // The leader's client URL as last read from etcd ("" unknown).
  std::string leader_url() const;
  // Any thread: the node's view of its group as of the replication
  // thread's last tick (every lease TTL / 3). The board outlives the node
  // for whoever keeps it.
  std::shared_ptr<const HealthBoard> health() const override { return health_; }

  std::string group() const override { return options_.group; }
  PlacementLookup LookupPlacement(const std::string& topic, uint32_t queue_count) override;
  std::string LeaderUrlOf(const std::string& group) const override;
  std::string LeaderNodeOf(const std::string& group) const override;
  std::vector<wire::GroupLeaderView> Groups() const override;
  uint64_t PlacementVersion() const override { return placement_->placement_version(); }
  uint64_t RequestMove(MoveRequest request) override {
    return placement_->RequestMove(std::move(request));
  }
  std::optional<Result<QueueMoves>> TakeMoveOutcome(uint64_t ticket) override {
    return placement_->TakeMoveOutcome(ticket);
  }
  std::optional<std::vector<std::string>> DrainPending(const QueueGeneration& moved) const override;
  std::vector<QueueGeneration> MovedAway() const override;
  void ReportDrains(std::map<QueueGeneration, std::vector<std::string>> reports) override {
    placement_->ReportDrains(std::move(reports));
  }

  Status ReplayCommittedRounds(
      uint64_t after, const std::function<Status(std::string_view payload)>& apply) override;
  // Any thread: the highest entry this node knows committed while it
  // follows (its log holds it, it never changes); what a store kept up to
  // date beside the log may apply (broker/src/standby_store.h).
  uint64_t follower_committed() const {
    return follower_committed_.load(std::memory_order_acquire);
  }
  // Any thread: how many entries that store holds, for the health board.
  void set_store_applied(uint64_t entries) {
    store_applied_.store(entries, std::memory_order_relaxed);
  }
  uint64_t Replicate(std::string payload) override;
  Status WaitAppended(uint64_t ticket) override;
  uint64_t committed() const override { return committed_.load(std::memory_order_acquire); }
  std::optional<Entry> CommittedEntry(uint64_t ticket) const override;
  Status failure() const override;
  EventFd& event() override { return event_; }

 private:
  struct Impl;  // the replication thread's own state (cluster_node.cc)
  explicit ClusterNode(ClusterNodeOptions options);
  void Loop(std::shared_ptr<std::promise<Status>> started);

  const ClusterNodeOptions options_;
  EventFd event_;
  // Raised by Replicate: wakes the replication thread's wait at once, so a
  // round starts replicating when it is handed over, not at the next poll.
  EventFd round_waiting_;
  const std::shared_ptr<HealthBoard> health_;
  std::atomic<uint64_t> committed_{0};
  std::atomic<uint64_t> follower_committed_{0};
  std::atomic<uint64_t> store_applied_{0};
  std::atomic<bool> stop_{false};
  // Placements and the cluster map (its own thread; set by Start).
  std::unique_ptr<PlacementThread> placement_;
  // MovedAway's answer for the map it was computed from.
  mutable std::mutex moved_away_mu_;
  mutable std::shared_ptr<const ClusterMap> moved_away_map_;  // guarded by moved_away_mu_
  mutable std::vector<QueueGeneration> moved_away_;           // guarded by moved_away_mu_

  mutable std::mutex mu_;
  std::condition_variable leadership_cv_;
  std::deque<std::string> to_append_;    // guarded by mu_
  uint64_t next_ticket_ = 0;             // guarded by mu_
  uint64_t appended_ticket_ = 0;         // in the replica log up to this; guarded by mu_
  std::condition_variable appended_cv_;  // appended_ticket_, failure_ or stop_ changed
  // The last kCommittedKept committed tickets and their entries, oldest
  // first; guarded by mu_.
  std::deque<std::pair<uint64_t, Entry>> committed_entries_;
  // Leading, with this many committed entries before the epoch start.
  std::optional<uint64_t> leadership_;  // guarded by mu_
  bool leadership_taken_ = false;       // guarded by mu_
  std::string leader_url_;              // guarded by mu_
  Status failure_;                      // guarded by mu_
  std::thread thread_;
};

}  // namespace txmq::cluster
