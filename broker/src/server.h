// The broker's core: one thread that owns the ROUTER socket and every piece
// of in-memory state, and the store (storage/src/broker_store.h) that writes.
//
// Thread "txmq-core" (Server::Run) owns: router_, core_, disk_, topics_,
// dedup_, delayed_, groups_, delivery_, transactions_, clients_, retention_,
// sweeper_, acl_guard_ and the store's open round. The store's own threads
// write, sync and checkpoint the rounds they are handed. Thread
// "txmq-conn-guard" (guard_) watches the socket's connections and sheds
// those over the limit. With CURVE, security_ runs the ZAP handler's thread
// (auth/zap_handler.h). Other threads reach the core only through
// RequestStop(), ReloadAcl(), the metrics mailbox (snapshot_mailbox.h:
// they ask, the core copies its state into a snapshot between batches) and
// the operator mailbox (operator_mailbox.h: the HTTP console's requests,
// served between batches like any other request).
//
// Time: every reading comes from the TimeSource the server is built with,
// through the core (clock.h): schedules and stored timestamps use broker
// time (core_.NowMs()); timeouts inside this process (leases, long polls,
// check answers, client silence, the loop's own wake-ups) use its steady
// clock (core_.SteadyNow()).
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "broker/src/admin_service.h"
#include "broker/src/auth/guard.h"
#include "broker/src/auth/security.h"
#include "broker/src/clients.h"
#include "broker/src/connection_guard.h"
#include "broker/src/core.h"
#include "broker/src/dedup.h"
#include "broker/src/delayed.h"
#include "broker/src/delivery.h"
#include "broker/src/disk_watermark.h"
#include "broker/src/dlq_service.h"
#include "broker/src/groups.h"
#include "broker/src/inspect_service.h"
#include "broker/src/leader_mark.h"
#include "broker/src/lifecycle_service.h"
#include "broker/src/metrics_collector.h"
#include "broker/src/operator_link.h"
#include "broker/src/operator_mailbox.h"
#include "broker/src/placement_gate.h"
#include "broker/src/retention.h"
#include "broker/src/round_replicator.h"
#include "broker/src/router_link.h"
#include "broker/src/send_service.h"
#include "broker/src/snapshot_mailbox.h"
#include "broker/src/topic_sweeper.h"
#include "broker/src/topics.h"
#include "broker/src/transactions.h"
#include "protocol/src/event_fd.h"
#include "storage/src/broker_store.h"

namespace txmq::broker {

// The store a broker with these options opens (also what a cluster node
// rebuilds its store with: the same segment size places records alike).
storage::StoreOptions StoreOptionsFor(const BrokerOptions& o);

class Server {
 public:
  // `time` (the machine's clocks) must outlive the server, and so must
  // `metrics` (null: nobody asks for snapshots) and `operators` (null: no
  // console requests), which the core answers while Run() loops and closes
  // when it returns.
  Server(const BrokerOptions& options, const TimeSource& time, SnapshotMailbox* metrics = nullptr,
         OperatorMailbox* operators = nullptr);
  ~Server();

  // On the starting thread: open the store (recovering it), rebuild state
  // from it, bind.
  Status Init();
  // The core loop; returns when stopped or when storage failed for good.
  void Run();
  // Any thread.
  void RequestStop();
  // Any thread, after Init: re-reads the ACL file (FAILED_PRECONDITION
  // without one); the core applies it from its next batch of requests.
  Status ReloadAcl();

  const std::string& endpoint() const { return info_.endpoint; }
  // Why Run() returned: OK after RequestStop(), else the storage failure.
  Status exit_status() const { return core_.storage_error(); }

 private:
  void ReadRequests(int budget);
  // `key`: the connection's CURVE key (ZAP user id), "" in plaintext mode.
  // `fd`: the descriptor of the request's connection (-1: unknown).
  // `console_peer`: set for a request from the operator mailbox (who asked
  // over HTTP); "" for one from the network.
  void Dispatch(const std::string& routing_id, std::string key, int fd, wire::Frame& frame,
                const std::string& console_peer = "");
  // Serves the operator mailbox's waiting requests.
  void ServeOperatorRequests();
  // After an ACL reload: forgets clients whose principal is gone or lost
  // the right their registration needs (their leases go back).
  void ForgetUnauthorized();
  // Core thread: takes up a reloaded ACL (ForgetUnauthorized) and says so
  // in acl_applied_.
  void ApplyAclChanges();
  void HandleHello(const RequestContext& ctx, wire::Hello::Reader hello);
  // Placement (server_placement.cc). True when the request was answered
  // or parked for its topic's placement; false: serve it now.
  bool HoldForPlacement(const RequestContext& ctx, wire::Envelope::Reader env, wire::Frame& frame,
                        int fd);
  // Keeps the request (the frame moves) until its topic is placed, then
  // dispatches it again.
  void ParkRequest(const RequestContext& ctx, const std::string& topic, wire::Frame& frame, int fd);
  void HandleRoute(const RequestContext& ctx, wire::RouteRequest::Reader request,
                   wire::Frame& frame, int fd);
  // Queues moved away from this group: reports which consumer groups have
  // not read what it holds of them; and when placements changed, serves
  // the parked pulls again (a queue held back may be free now).
  void TickMoves(SteadyTime now);
  // Continues broker time from what the data directory recorded last.
  Status ResumeBrokerTime();
  void CountBadFrame(const std::string& routing_id, uint64_t request_id, const Status& why);
  // Cluster leader: sets sealed_, which hands a sealed round to replication.
  void HandToReplicationWhenSealed();
  void FinishRound(std::unique_ptr<storage::Round> round);
  // Cluster node: completes the rounds whose entries committed, in order;
  // once the replicator failed, fails the rest with its status and stops
  // the broker.
  void CompleteReplicated();
  // Shutdown: waits (bounded) for the rounds still replicating.
  void DrainReplicated();
  // Starts the next commit round if the storage thread is free; a small
  // one may be written on this thread when `allow_inline`.
  void SubmitIfIdle(bool allow_inline);
  void Housekeeping(SteadyTime now);
  // Answers the metrics mailbox's waiting requests with one snapshot.
  void PublishMetrics();
  void Drain();

  const BrokerOptions& options_;
  zmq::context_t context_;
  // Null in plaintext mode. Declared before router_, so the broker socket
  // closes before the ZAP handler goes: libzmq would admit any key while a
  // CURVE socket has no handler to ask.
  std::unique_ptr<auth::Security> security_;
  std::unique_ptr<zmq::socket_t> router_;
  // Before link_ and the services: stopped before the socket closes.
  ConnectionGuard guard_;
  RouterLink link_;
  OperatorLink split_link_;  // link_, or the operator mailbox for console replies
  EventFd commit_done_;
  EventFd stop_signal_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> running_{false};      // Run() is in its loop
  std::atomic<uint64_t> acl_applied_{0};  // ACL generation the core judges by
  ServerInfo info_;

  Core core_;
  DiskWatermark disk_;
  // Before topics_, which asks it (a cluster node's placement).
  PlacementGate placement_;
  TopicManager topics_;
  DedupWindow dedup_;
  DelayedMessages delayed_;
  GroupTable groups_;
  ClientRegistry clients_;
  SendService sends_;
  Delivery delivery_;
  TransactionService transactions_;
  Retention retention_;
  AdminService admin_;
  InspectService inspect_;
  DlqService dlq_;
  TopicSweeper sweeper_;
  LifecycleService lifecycle_;
  MetricsCollector metrics_;
  SnapshotMailbox* mailbox_;
  OperatorMailbox* operators_;
  auth::Guard acl_guard_;
  std::unique_ptr<storage::BrokerStore> store_;

  // Cluster node (options_.replicator): rounds the store wrote whose
  // entries have not committed yet, by ticket; their completions wait.
  struct Replicating {
    uint64_t ticket = 0;
    std::unique_ptr<storage::Round> round;
  };
  std::deque<Replicating> replicating_;
  LeaderMark leader_mark_;  // what the store holds of the replica log
  uint64_t last_ticket_ = 0;
  // A cluster leader hands each round to replication once it is sealed,
  // before the store writes it (server_rounds.cc); these are the rounds
  // handed so, oldest first, with their tickets, until FinishRound.
  storage::BrokerStore::SealedFn sealed_;
  std::deque<std::pair<const storage::Round*, uint64_t>> sealed_tickets_;

  SteadyTime next_cleanup_;
  SteadyTime next_move_tick_{};
  uint64_t placement_version_seen_ = 0;
  SteadyTime last_bad_frame_log_;
  uint64_t bad_frames_logged_ = 0;
};

}  // namespace txmq::broker
