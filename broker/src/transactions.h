// Transactional (half) messages: the state machine
//   PREPARED -> COMMITTED | ROLLED_BACK   (the first final state wins)
// and the check-back that asks a producer group about transactions whose
// outcome never arrived.
//
// Half messages are records of their own in the store, invisible to every
// consumer. Ending a transaction is one round: the halves go, the
// transaction record takes its final state and is kept for
// resolved_retention, and on commit the messages are appended to their
// topics (a delayed one is due `delay` after the commit). A committed
// message enters the send dedup window like a plain send; one whose id is
// already there (a plain send, or an earlier transaction retried after an
// unknown outcome) is not stored again. Every path that
// ends a transaction (the producer, a check answer, an operator, the stuck
// policy) goes through Finish().
//
// Open transactions are kept in memory, with a schedule ordered by (next
// check time, id) that mirrors the stored schedule, so a check round costs what is
// due, not what is stored. Resolved ones are only on disk.
//
// Checks that find nobody to ask. Only a check a producer received counts
// against check_max. An attempt that finds no live producer of the group is
// counted apart (no_producer_checks, reset by the next check that reaches
// one); check_max such attempts in a row make the transaction stuck too,
// with last answer "no producer", so operators see it and the stuck policy
// applies. Right after start-up the broker knows no producer at all (the
// client registry is not persisted): for a grace period of one client
// timeout plus kReconnectAllowance, a due check whose group has no live
// producer simply waits for one to reconnect; it is not an attempt at all.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/src/clients.h"
#include "broker/src/core.h"
#include "broker/src/dedup.h"
#include "broker/src/delayed.h"
#include "broker/src/metrics_snapshot.h"
#include "broker/src/stored_message.h"
#include "broker/src/topics.h"
#include "storage/src/latency_histogram.h"
#include "storage/src/tx_records.h"

namespace txmq::broker {

const char* TxStateName(storage::TxStateCode state);

struct OpenTx {
  std::string id;
  storage::TxRecord record;
  uint64_t check_request = 0;  // request id of the check awaiting an answer; 0 = none
  SteadyTime check_deadline;
  std::string checked_instance;
  // False from the SendHalf until its round completes (is durable; on a
  // cluster leader, committed). Until then the halves may not be in the
  // index yet, and a commit would find none to store: an end is refused
  // (UNAVAILABLE), no check is sent, and a check answer counts as unknown.
  bool halves_durable = true;
  // Topics its commit will create (TopicManager::Reserve), released when
  // it ends.
  std::vector<std::string> reserved_topics;
};

struct TxStats {
  uint64_t halves_stored = 0;
  uint64_t committed = 0;
  uint64_t rolled_back = 0;
  uint64_t checks_sent = 0;
  uint64_t ends_carried = 0;  // arrived on a half (SendHalfRequest.ends)
  uint64_t answers[7] = {};   // by storage::CheckAnswerCode
  // From a check sent to its producer's answer (answers to the check
  // awaited, not late ones).
  storage::LatencyHistogram check_latency;
};

class TransactionService {
 public:
  // Unanswered checks one producer instance may have at a time.
  static constexpr int kMaxChecksInFlightPerProducer = 64;
  // Schedule entries one tick looks at, due or not sendable.
  static constexpr size_t kMaxScanPerTick = 10000;

  TransactionService(Core& core, TopicManager& topics, DelayedMessages& delayed, DedupWindow& dedup,
                     ClientRegistry& clients);

  // Rebuilds the open transactions and their schedule from the store.
  Status Recover();
  // The broker serves from `now` on: producers get the grace period from
  // here to reconnect before a check without a producer counts.
  void StartServing(SteadyTime now);
  // Beyond the client timeout, how long a client may take to be back after
  // a broker restart: its reconnect backoff (capped at 2 s) and one
  // heartbeat (at most 1 s; the reply "unregistered" makes it say hello).
  static constexpr std::chrono::milliseconds kReconnectAllowance{3000};

  void HandleSendHalf(const RequestContext& ctx, wire::SendHalfRequest::Reader request);
  void HandleEndTransaction(const RequestContext& ctx, wire::EndTransactionRequest::Reader request);
  void HandleCheckReply(const RequestContext& ctx, wire::CheckReply::Reader reply);

  // Sends due checks (rate limited) and notes checks that went unanswered.
  void Tick(SteadyTime now);
  // Forgets resolved transactions older than resolved_retention.
  bool Cleanup(int64_t now_ms, uint32_t budget);
  SteadyTime NextWake() const;

  // Operators.
  void HandleList(const RequestContext& ctx, wire::ListTransactionsRequest::Reader request);
  void HandleShow(const RequestContext& ctx, capnp::Text::Reader tx_id);
  void HandleCheckNow(const RequestContext& ctx, wire::CheckNowRequest::Reader request);
  void FillCounters(wire::TxCounters::Builder out) const;
  // Open transactions by id (lifecycle_service.h refuses to delete a topic
  // they would append to).
  const std::map<std::string, OpenTx>& open() const { return open_; }
  // Ended, with the round that records the end not yet durable.
  bool Ending(const std::string& tx_id) const { return resolving_.count(tx_id) > 0; }
  size_t open_count() const { return open_.size(); }
  // The most open transactions one producer group has (O(groups)).
  size_t LargestGroupOpen() const;
  // Counts since start by producer group (see group_stats_), and the
  // broker-wide ones.
  const std::map<std::string, TxStats, std::less<>>& group_stats() const { return group_stats_; }
  const TxStats& stats() const { return stats_; }

  // The producer group of a transaction, open or ended within
  // resolved_retention; nullopt when the broker does not know it. What
  // authorization checks a request about the transaction against.
  std::optional<std::string> GroupOf(const std::string& tx_id);

 private:
  using Then = std::function<void(const Status&)>;

  // What one end request came to: an error, or the state now durably
  // recorded.
  struct EndDone {
    std::string tx_id;
    Status status;
    storage::TxStateCode state = storage::TxStateCode::kPrepared;
    bool already_final = false;
  };
  // Applies one end (a request of its own, or one carried by a half);
  // `then` runs once, when the outcome is durable or at once on an error.
  void EndOne(const RequestContext& ctx, wire::EndTransactionRequest::Reader request,
              std::function<void(const EndDone&)> then);

  // Ends an open transaction; `then` runs once the round is durable.
  void Finish(OpenTx& tx, storage::TxStateCode state, const std::string& resolved_by, Then then);
  void Commit(OpenTx& tx, int64_t now_ms);
  void Persist(const OpenTx& tx);
  // Adds a transaction to open_ (and its group's count).
  OpenTx& Open(OpenTx tx);
  void Reschedule(OpenTx& tx, int64_t next_check_ms);
  // Recover(): open transactions whose halves are stored but whose check
  // schedule entry is gone are scheduled again (and logged).
  Status RecoverUnscheduled();
  // Final state of a transaction that is not open: resolving now, or on disk.
  std::optional<storage::TxRecord> FindResolved(const std::string& tx_id);

  // Checks.
  enum class CheckSent {
    kSent,           // a producer got it (or the transaction was decided)
    kNoProducer,     // nobody to ask: counted as a no-producer attempt
    kProducersBusy,  // every checker has enough to answer: try later
    kDeferred,       // nobody to ask yet, in the start-up grace: not an attempt
  };
  CheckSent SendCheck(OpenTx& tx, SteadyTime now, int64_t now_ms);
  // Nobody to ask: deferred during the grace, else a no-producer attempt.
  CheckSent NoProducer(OpenTx& tx, SteadyTime now, int64_t now_ms);
  // Records what a check learned (counters, last answer, no longer waiting).
  void NoteAnswer(OpenTx& tx, storage::CheckAnswerCode answer, const std::string& error);
  // NoteAnswer, then acts on it: ends the transaction on commit/rollback,
  // marks it stuck when the checks are used up.
  // Both return whether the transaction is still open: a decided one (an
  // answer, or a stuck policy) is erased, and `tx` with it.
  bool ApplyAnswer(OpenTx& tx, storage::CheckAnswerCode answer, const std::string& error,
                   const std::string& from);
  bool MarkStuck(OpenTx& tx);
  int64_t IntervalAfter(uint32_t checks) const;
  // Live checkers of the transaction's group, the one to ask first first.
  std::vector<const ClientInfo*> CheckersInOrder(const OpenTx& tx);
  void ForgetCheck(OpenTx& tx);
  // The entry of group_stats_ that counts `group`.
  TxStats& StatsOf(const std::string& group);
  void ReplyEnded(const std::string& routing_id, uint64_t request_id, const std::string& tx_id,
                  storage::TxStateCode state, bool already_final);

  Core& core_;
  TopicManager& topics_;
  DelayedMessages& delayed_;
  DedupWindow& dedup_;
  ClientRegistry& clients_;

  std::map<std::string, OpenTx> open_;                       // by id
  std::unordered_map<std::string, uint32_t> open_by_group_;  // counts of open_, for the limit
  std::set<std::pair<int64_t, std::string>> schedule_;       // (next check ms, id)
  // Ended in a round that is not durable yet: the disk does not know.
  std::unordered_map<std::string, storage::TxRecord> resolving_;
  std::unordered_map<uint64_t, std::string> outstanding_;      // check request id -> tx id
  std::set<std::pair<SteadyTime, uint64_t>> check_deadlines_;  // (answer due, request id)
  uint64_t next_check_request_ = uint64_t{1} << 62;            // far from client ids
  std::unordered_map<std::string, int> checks_in_flight_;      // by producer instance
  std::map<std::string, uint32_t> round_robin_;                // by group
  std::map<std::string, SteadyTime> no_producer_logged_;       // by group
  double check_tokens_;
  SteadyTime tokens_at_;
  SteadyTime next_dispatch_;                    // earliest useful Tick while due checks wait
  SteadyTime grace_until_ = SteadyTime::max();  // until StartServing
  std::set<std::string> grace_logged_;          // groups told about the grace
  uint32_t stuck_count_ = 0;
  TxStats stats_;
  // The same counts by producer group (metrics), for at most
  // kMaxProducerGroupsTracked groups; later ones are summed under
  // kOtherProducerGroups so a stream of new group names cannot grow it.
  std::map<std::string, TxStats, std::less<>> group_stats_;
};

}  // namespace txmq::broker
