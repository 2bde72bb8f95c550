// Operator lifecycle changes: delete a topic, delete a consumer group,
// reset a group's offsets on a topic, purge dead letters, move a queue to
// another broker group (txmqctl topic delete, group delete, group reset,
// dlq purge, topic move).
//
// Each request runs the same steps:
//   1. RequireAdmin (admin_auth.h), a writable store, valid names;
//   2. the checks that keep it safe, each a clear FAILED_PRECONDITION:
//      - topic delete: no open transaction has messages for the topic (its
//        commit would create the topic again); no consumer of a group that
//        reads it is connected and none of its messages is in flight,
//        unless forced;
//      - group delete: no consumer of the group is connected, polling or
//        holding a message, and its dead-letter queue is empty, unless
//        forced;
//      - group reset: no consumer of the group is connected or holds a
//        message of the topic, unless forced;
//   3. the report of exactly what changes (what a dry run answers);
//   4. unless a dry run: the change, in memory at once and in the store in
//      the open round; the reply and one audit line (operator, action,
//      object, result) once that round is durable. A refusal is audited
//      too (not a dry run's: it changes nothing).
// A deleted topic's index entries are swept afterwards (topic_sweeper.h).
// A queue move is written to etcd, not to the store (lifecycle_moves.cc):
// its reply and audit line come once etcd has it.
//
// Thread safety: the core thread only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "broker/src/clients.h"
#include "broker/src/core.h"
#include "broker/src/delayed.h"
#include "broker/src/delivery.h"
#include "broker/src/groups.h"
#include "broker/src/inspect_service.h"
#include "broker/src/placement_gate.h"
#include "broker/src/topic_sweeper.h"
#include "broker/src/topics.h"
#include "broker/src/transactions.h"

namespace txmq::broker {

class LifecycleService {
 public:
  struct Deps {
    Core& core;
    TopicManager& topics;
    GroupTable& groups;
    ClientRegistry& clients;
    Delivery& delivery;
    const TransactionService& transactions;
    InspectService& inspect;
    TopicSweeper& sweeper;
    PlacementGate& placement;
    RoundReplicator* replicator;  // null: a single broker
  };
  explicit LifecycleService(const Deps& deps) : d_(deps) {}

  void Handle(const RequestContext& ctx, wire::LifecycleRequest::Reader request);

 private:
  // One request: who asks, and how.
  struct Call {
    RequestContext ctx;
    std::string op;  // the operator named in the request
    bool dry_run = false;
    bool force = false;
  };

  void DeleteTopic(const Call& call, const std::string& name);
  void DeleteGroup(const Call& call, const std::string& group);
  void ResetGroup(const Call& call, wire::GroupResetRequest::Reader request);
  void PurgeDlq(const Call& call, wire::DlqPurgeRequest::Reader request);
  void MoveQueue(const Call& call, wire::QueueMoveRequest::Reader request);
  void ForgetPlacement(const Call& call, const std::string& topic);

  // The checks every change starts with: an admin, a writable store (a dry
  // run only reads).
  Status Admit(const Call& call, std::string_view action) const;
  // Answers an error; audited unless a dry run.
  void Refuse(const Call& call, std::string_view action, const std::string& object,
              const Status& why);
  // A dry run's report is answered now. A change's is answered once the
  // open round is durable; then the audit line is written with the result
  // and `after` runs (if the round failed: the error instead, audited).
  void Finish(const Call& call, std::string_view action, const std::string& object,
              std::shared_ptr<wire::OutFrame> reply, std::function<void()> after = {});
  void Audit(const Call& call, std::string_view action, const std::string& object,
             const std::string& result) const;

  // Drops everything that names the topic (every group's cursors on it and
  // redeliveries of it) and the topic itself; returns the leases that ended.
  uint32_t RemoveTopic(const std::string& name);
  // Connected consumers of these groups.
  std::vector<const ClientInfo*> ConsumersOf(const std::vector<std::string>& groups) const;
  // Messages of `topic` leased to `group`'s consumers now (every group's
  // when `group` is null).
  uint32_t InFlight(const GroupState* group, const std::string& topic) const;
  // Delayed messages stored to enter the topic once due.
  uint32_t CountDelayed(uint32_t topic_id);

  Deps d_;
};

// "2 connected consumers (client-a, client-b)": for refusals.
std::string DescribeConsumers(const std::vector<const ClientInfo*>& consumers);
}  // namespace txmq::broker
