// The broker's services wired as Server wires them, without a socket and
// without a thread: frames to clients are recorded (RecordingLink), time is
// a ManualTimeSource that only the test moves, and the test runs the core
// loop's steps itself (a request, Housekeeping, Commit). The store is a
// real BrokerStore on disk in a temporary directory.
//
// So delivery (leases, retries, delays, dead letters) and the transaction
// state machine (checks, their schedule, answers, the stuck policy) can be
// asserted at exact instants, in milliseconds of real time.
//
// Threads: the test's thread is the core thread; the store starts its own
// ("txmq-storage", "txmq-checkpoint": storage/src/broker_store.h), which
// rounds written inline (Commit) do not use.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "broker/src/auth/acl.h"
#include "broker/src/clients.h"
#include "broker/src/clock.h"
#include "broker/src/core.h"
#include "broker/src/dedup.h"
#include "broker/src/delayed.h"
#include "broker/src/delivery.h"
#include "broker/src/groups.h"
#include "broker/src/inspect_service.h"
#include "broker/src/lifecycle_service.h"
#include "broker/src/placement_gate.h"
#include "broker/src/retention.h"
#include "broker/src/send_service.h"
#include "broker/src/topic_sweeper.h"
#include "broker/src/topics.h"
#include "broker/src/transactions.h"
#include "protocol/src/codec.h"
#include "protocol/src/event_fd.h"
#include "storage/src/broker_store.h"
#include "tests/testutil/fault_fs.h"
#include "tests/testutil/testutil.h"

namespace txmq::broker {

// Keeps every frame the core sends, decoded, by client.
// Thread safety: the core (test) thread only.
// A frame not taken yet holds its bytes in the reply budget, as a frame a
// client has not read does on the socket.
class RecordingLink final : public ClientLink {
 public:
  bool Send(const std::string& routing_id, wire::OutFrame& frame, ReplyTicket ticket) override;

  // Frames sent to `client` since the last Take, oldest first.
  std::vector<wire::Frame> Take(const std::string& client);
  // The frame answering `request_id`, taken out of `client`'s frames.
  std::optional<wire::Frame> TakeReply(const std::string& client, uint64_t request_id);
  // A disconnected client: sends to it fail, as on the ROUTER socket.
  void Disconnect(const std::string& client) { gone_.insert(client); }

 private:
  struct Sent {
    wire::Frame frame;
    ReplyTicket ticket;
  };
  std::map<std::string, std::vector<Sent>> sent_;
  std::set<std::string> gone_;
};

// What a test keeps of a lease: enough to name it in an ack, nack or
// extension.
struct TestReceipt {
  std::string topic;
  uint32_t queue = 0;
  uint64_t offset = 0;
  uint64_t retry_id = 0;
  uint64_t lease_id = 0;
};

struct Pulled {
  std::string id;
  std::string topic;
  uint32_t delivery_count = 0;
  int64_t stored_ms = 0;
  std::map<std::string, std::string> properties;
  TestReceipt receipt;
};

struct LeaseAnswer {
  wire::LeaseState state = wire::LeaseState::EXPIRED;
  uint32_t delivery_count = 0;
  uint32_t retry_after_ms = 0;
  uint32_t valid_for_ms = 0;
};

// A check a producer received.
struct Check {
  uint64_t request_id = 0;
  std::string tx_id;
  uint32_t check_count = 0;
};

// Fault file layers for a harness's store (BrokerOptions.storage_layers),
// which then syncs every round, so checkpoints cover rounds as on a broker
// under --flush sync; a test makes syncs fail or cuts the power through
// them. Must outlive the harness.
struct FaultLayers {
  testing::FaultFileSystem fs;
  testing::FaultLevelDbEnv env;
  std::shared_ptr<StorageLayers> Shared() {
    auto layers = std::make_shared<StorageLayers>();
    layers->fs = &fs;
    layers->env = &env;
    return layers;
  }
};

// Thread safety: one test thread uses a harness.
class BrokerHarness {
 public:
  // Options as the test wants them; the data directory is the harness's.
  explicit BrokerHarness(const BrokerOptions& options);
  ~BrokerHarness();
  BrokerHarness(const BrokerHarness&) = delete;
  BrokerHarness& operator=(const BrokerHarness&) = delete;

  // ---- the core loop's steps (Server::Run) ----
  // Timers and cleanup, as Server::Housekeeping.
  void Housekeeping();
  // Writes the open round and runs its completions, as Server::SubmitIfIdle
  // and Server::FinishRound do (inline; until nothing is left to write).
  void Commit();
  // Time passes; then the loop wakes: Housekeeping and Commit.
  void Advance(std::chrono::milliseconds d);
  // Broker time now.
  int64_t NowMs() const { return core_.NowMs(); }
  SteadyTime SteadyNow() const { return core_.SteadyNow(); }

  // ---- requests, as Server::Dispatch runs them; each is committed ----
  // Runs the request `build` fills for `client`; the reply, if one was sent
  // by the time its round was durable (a parked pull has none yet).
  std::optional<wire::Frame> Call(const std::string& client,
                                  const std::function<void(wire::Envelope::Builder)>& build,
                                  uint64_t request_id = 0);

  // Runs a request as Call does but writes nothing: a request that waits
  // for its round stays in flight (until Commit). Returns its request id;
  // its reply, if any was sent, is in link().
  uint64_t Submit(const std::string& client,
                  const std::function<void(wire::Envelope::Builder)>& build);

  void Hello(const std::string& client, wire::Role role, const std::string& group,
             bool checker = true);
  // A plain send; fails the test unless the broker stored it.
  void Send(const std::string& topic, const std::string& id, int64_t delay_ms = 0,
            const std::string& key = "");
  // Pulls `topic` for `group`; with `wait_ms` a pull that finds nothing is
  // parked (and nullopt returned: its answer comes later, see TakePulled).
  std::optional<std::vector<Pulled>> Pull(const std::string& client, const std::string& group,
                                          const std::string& topic, uint32_t visibility_ms,
                                          uint32_t wait_ms = 0, uint32_t max_messages = 32);
  // Pull answers sent to `client` outside a Call (long polls answered later).
  std::vector<std::vector<Pulled>> TakePulled(const std::string& client);
  // acked/expired counts.
  std::pair<uint32_t, uint32_t> Ack(const std::string& client, const std::string& group,
                                    const TestReceipt& r);
  // requeued/dead-lettered/expired counts.
  struct NackCounts {
    uint32_t requeued = 0, dead = 0, expired = 0;
  };
  NackCounts Nack(const std::string& client, const std::string& group, const TestReceipt& r,
                  uint32_t delay_ms = 0, uint32_t max_reconsume = 0);
  LeaseAnswer Extend(const std::string& client, const std::string& group, const TestReceipt& r,
                     uint32_t visibility_ms, bool failed = false, uint32_t delay_ms = 0,
                     uint32_t max_reconsume = 0);

  // A half of one message per id, on `topic`; the state the broker answers.
  wire::TxState SendHalf(const std::string& client, const std::string& group,
                         const std::string& tx_id, const std::vector<std::string>& message_ids,
                         const std::string& topic = "orders", int64_t delay_ms = 0);
  // The end's status (OK, or the error) and the state it reports.
  std::pair<Status, wire::TxState> End(const std::string& client, const std::string& tx_id,
                                       wire::TxOutcome outcome);
  // Checks `client` received since the last call.
  std::vector<Check> TakeChecks(const std::string& client);
  // `client` answers a check.
  void Answer(const std::string& client, const Check& check, wire::TxOutcome outcome,
              const std::string& error = "");
  // Damage: inverts the bytes of the first log record holding `text` (a
  // body), so reading that record fails its checksum.
  void DamageLog(const std::string& text);

  // The transaction's record as the store has it (after Commit).
  std::optional<storage::TxRecord> GetTx(const std::string& tx_id) { return store_->GetTx(tx_id); }

  // From now on `client`'s requests come authenticated as `principal`
  // (as with CURVE; the harness skips the ACL itself, but handlers see
  // the principal and whether it is an admin).
  void SetPrincipal(const std::string& client, const std::string& principal, bool admin = false) {
    auth::Principal& p = principal_of_[client];
    p.name = principal;
    p.admin = admin;
  }

  const BrokerOptions& options() const { return options_; }
  ManualTimeSource& time() { return time_; }
  RecordingLink& link() { return link_; }
  Core& core() { return core_; }
  ClientRegistry& clients() { return clients_; }
  TopicManager& topics() { return topics_; }
  GroupTable& groups() { return groups_; }
  Delivery& delivery() { return delivery_; }
  TransactionService& transactions() { return transactions_; }
  DelayedMessages& delayed() { return delayed_; }
  Retention& retention() { return retention_; }

 private:
  void Dispatch(const std::string& client, const wire::Frame& frame);

  testing::TempDir dir_;
  BrokerOptions options_;
  std::map<std::string, auth::Principal> principal_of_;  // by client (SetPrincipal)
  ManualTimeSource time_;
  RecordingLink link_;
  EventFd round_done_;
  Core core_;
  TopicManager topics_;
  DedupWindow dedup_;
  DelayedMessages delayed_;
  GroupTable groups_;
  ClientRegistry clients_;
  SendService sends_;
  Delivery delivery_;
  TransactionService transactions_;
  Retention retention_;
  // Operators' lifecycle requests, as a single broker serves them.
  PlacementGate placement_{nullptr};
  InspectService inspect_;
  TopicSweeper sweeper_;
  LifecycleService lifecycle_;
  std::unique_ptr<storage::BrokerStore> store_;
  SteadyTime next_cleanup_;
  uint64_t next_request_ = 1;
};

}  // namespace txmq::broker
