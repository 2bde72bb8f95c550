// txmq::TransactionProducer: messages that are delivered if and only if a
// local transaction commits.
//
//   txmq::TransactionProducer producer(
//       {.broker = "tcp://127.0.0.1:7800", .group = "orders"},
//       [&](const txmq::CheckRequest& check) {       // asked when an outcome never arrived
//         return db.HasOrder(check.message().key) ? txmq::TxState::kCommit
//                                                 : txmq::TxState::kRollback;
//       });
//   producer.Start();
//   txmq::TransactionResult r = producer.SendInTransaction(
//       {.topic = "order-created", .key = "42", .body = "..."},
//       [&](const txmq::Message&) {                   // the local transaction
//         db.CreateOrder(42);
//         return txmq::TxState::kCommit;
//       });
//   if (!r.ok()) log("transaction {}: {}", r.transaction_id, r.status.ToString());
//
// SendInTransaction stores the messages as a half (prepared) transaction,
// invisible to consumers; runs the local transaction; then tells the broker
// to commit or roll back, retrying until it answers. If the producer dies
// or the outcome is lost, the broker asks the group's checker — preferring
// the instance that started the transaction, any live one otherwise — until
// it learns the outcome (see the broker's check options). The checker must
// answer from durable local state: COMMIT only if the local change is
// committed, ROLLBACK only if it never will be, UNKNOWN when it cannot tell
// yet. An exception, or any other value, counts as UNKNOWN, never COMMIT.
//
// With a LocalStore instead of a checker, the library answers checks by
// itself: the local transaction's writes commit in one batch with a
// transaction record; a check answers COMMIT when the record exists,
// UNKNOWN while the local transaction is still running, and otherwise
// writes a rollback tombstone and answers ROLLBACK, after which a late
// local commit fails ABORTED instead of committing what was rolled back.
// Transaction ids start with the store's instance id, and a store answers
// only for its own (UNKNOWN for others'), so every producer of a group may
// be asked safely.
//
//   txmq::TransactionProducer producer({.broker = url, .group = "orders"}, *store);
//   producer.SendInTransaction(message, [&](txmq::LocalTxn& tx, const txmq::Message& m) {
//     tx.Put("order/42", row);
//     return txmq::TxState::kCommit;      // kRollback (or kUnknown): nothing is written
//   });
//
// Ends. By default (ProducerOptions::end_mode = kConfirmed) the call
// returns once the broker has durably recorded the outcome: two round trips
// per transaction, and `outcome` says what the broker recorded. With
// kBackground the call returns as soon as the local transaction decided:
// the local commit is the decision, and the broker learns it from an end
// sent in the background (riding on the producer's next half message, or
// on its own after a moment; retried until answered) or, should that never
// arrive, from its check-back. The result then has end_pending set and
// outcome kUnknown; FlushEnds waits for the broker's answers, and Shutdown
// tries for up to `send_timeout`. A background end the broker refuses
// (CONFLICT: a check-back or an operator decided otherwise first) is
// logged at error level; store-backed producers never commit locally what
// a check rolled back, so for them only an operator can cause that.
// kConfirmed stays the default because it is what an OK result has always
// meant; choose kBackground for throughput.
//
// Windowed: SendInTransactionAsync keeps up to `transaction_window`
// transactions of one producer in flight. Its local transactions run on
// `local_threads` library threads, each once its half is durable.
//
//   std::vector<std::future<txmq::TransactionResult>> results;
//   for (auto& m : batch) results.push_back(producer.SendInTransactionAsync(
//       m, [&](txmq::LocalTxn& tx, const txmq::Message& m) { ...; return txmq::TxState::kCommit;
//       }));
//   for (auto& r : results) if (auto t = r.get(); !t.ok()) log(t.status.ToString());
//
// A cluster of several broker groups: a transaction is one group's. Its
// messages go to the group serving their queues (a keyed message's queue
// is its key's; keyless ones go with the keyed ones); messages no single
// group serves are refused with INVALID_ARGUMENT before anything is sent.
// The producer answers the check-backs of every group of the cluster.
//
// Thread safety: all methods may be called from any thread, Shutdown also
// while other threads are inside SendInTransaction (see Shutdown). The
// checker runs on `checker_threads` library threads, possibly concurrently;
// the local transactions of SendInTransactionAsync on `local_threads`.
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "txmq/message.h"
#include "txmq/producer.h"
#include "txmq/status.h"

namespace txmq {

enum class TxState {
  kCommit,
  kRollback,
  kUnknown,  // undecided: leave it to the broker's check-back
};

// "COMMIT", "ROLLBACK", "UNKNOWN".
const char* TxStateName(TxState state);

// What the broker asks the checker about.
struct CheckRequest {
  std::string transaction_id{};
  std::string producer_group{};
  std::vector<Message> messages{};  // as sent, ids set
  uint32_t check_count = 0;         // 1 for the first check
  std::chrono::system_clock::time_point born_at{};
  const Message& message() const { return messages.front(); }
};

using TransactionChecker = std::function<TxState(const CheckRequest&)>;

// What SendInTransaction did. ok() means the broker recorded what the local
// transaction decided: COMMIT (the messages are delivered) or ROLLBACK
// (they never are), or the local transaction said UNKNOWN and left the
// decision to check-back (outcome kUnknown). Anything else is a non-OK
// `status`, whose message names the transaction:
//   - nothing was sent (bad message, TOO_LARGE, not started, shut down):
//     transaction_id is empty;
//   - the half was not stored or not confirmed: `local` is empty (the local
//     transaction never ran); an unconfirmed half is rolled back by
//     check-back, as the local transaction never committed;
//   - ABORTED: the local transaction committed but the broker had already
//     rolled the transaction back (a check-back answered ROLLBACK, or an
//     operator): its messages are never delivered. A store-backed producer
//     does not commit locally in that case and says ABORTED too;
//   - CONFLICT: the local transaction rolled back but an operator had
//     already committed: the messages are delivered;
//   - TIMEOUT, UNAVAILABLE (or another error): the end was not confirmed;
//     check-back decides. The local transaction ran: do not simply repeat
//     the call, follow transaction_id up (txmqctl tx show <id>).
//   - a store-backed producer whose local commit failed other than ABORTED
//     (an I/O error: the batch may still be on disk and show up when the
//     store is opened again) sends no end: the error is the commit's, the
//     outcome kUnknown, and check-back asks the store.
// Once the half was sent, transaction_id is set, on error too.
struct [[nodiscard]] TransactionResult {
  Status status{};
  std::string transaction_id{};
  std::vector<std::string> message_ids{};
  // What the local transaction decided (an exception counts as kRollback);
  // empty when it did not run.
  std::optional<TxState> local{};
  // What the broker recorded: kCommit or kRollback; kUnknown when it is left
  // to check-back, was not confirmed, or is still on its way (end_pending).
  TxState outcome = TxState::kUnknown;
  // TransactionEndMode::kBackground: the end (`local`) was queued, not yet
  // confirmed; the broker records it when it arrives, or learns it by
  // check-back. ok() then means: half durable, local transaction decided.
  bool end_pending = false;

  bool ok() const { return status.ok(); }
};

class LocalStore;
class LocalTxn;

class TransactionProducer {
 public:
  TransactionProducer(ProducerOptions options, TransactionChecker checker);
  // Answers checks from `store`, which must outlive the producer. The
  // producer's client id defaults to "<store instance id>/<group>", so after
  // a restart the broker again asks this store about its transactions (one
  // such producer per store and group).
  TransactionProducer(ProducerOptions options, LocalStore& store);
  ~TransactionProducer();
  TransactionProducer(const TransactionProducer&) = delete;
  TransactionProducer& operator=(const TransactionProducer&) = delete;

  // Connects and starts answering checks. A producer starts once:
  // FAILED_PRECONDITION after Shutdown.
  Status Start();
  // Two phases. New calls fail FAILED_PRECONDITION at once; calls in flight
  // (also asynchronous ones) get up to `send_timeout` to finish their
  // transactions, and background ends up to `send_timeout` more to be
  // confirmed (those still unconfirmed are left to check-back). Then the
  // connection closes: whatever still waits on the broker fails UNAVAILABLE
  // "transaction producer shut down" (a half already stored is resolved by
  // the broker's check-back with another member of the group, or marked
  // stuck). Returns when no call uses the producer any more (a local
  // transaction still running is waited for) and the checkers running
  // have finished. Idempotent; also run by the destructor.
  void Shutdown();

  // One message, or several (to one or more topics) committed or rolled
  // back together. Does not run `local` when the half messages cannot be
  // stored. See TransactionResult for what to check. At most 64 messages,
  // whose counted bytes together are within the broker's max_message_bytes
  // (the rule of one Send; txmq/properties.h), else TOO_LARGE before
  // anything is sent. The library stamps txmq.tx and txmq.producer-group on
  // each message; they do not count.
  TransactionResult SendInTransaction(Message message,
                                      const std::function<TxState(const Message&)>& local);
  TransactionResult SendInTransaction(
      std::vector<Message> messages,
      const std::function<TxState(const std::vector<Message>&)>& local);

  // Store-backed producers: `local` writes into the LocalTxn, which the
  // library commits together with the transaction record when `local`
  // returns kCommit. ABORTED when a check had already rolled the
  // transaction back (nothing was committed locally).
  TransactionResult SendInTransaction(
      Message message, const std::function<TxState(LocalTxn&, const Message&)>& local);
  TransactionResult SendInTransaction(
      std::vector<Message> messages,
      const std::function<TxState(LocalTxn&, const std::vector<Message>&)>& local);

  // The same, asynchronously: waits only while `transaction_window`
  // transactions of this producer are in flight, then returns a future
  // that completes with what SendInTransaction would have returned. `local`
  // is copied and runs on a library thread once the half is durable (never
  // when it is not); it must not call this producer's synchronous methods
  // or wait for another of its futures. A call the producer refuses
  // (not started, shut down) completes at once.
  std::future<TransactionResult> SendInTransactionAsync(
      Message message, std::function<TxState(const Message&)> local);
  std::future<TransactionResult> SendInTransactionAsync(
      std::vector<Message> messages, std::function<TxState(const std::vector<Message>&)> local);
  std::future<TransactionResult> SendInTransactionAsync(
      Message message, std::function<TxState(LocalTxn&, const Message&)> local);
  std::future<TransactionResult> SendInTransactionAsync(
      std::vector<Message> messages,
      std::function<TxState(LocalTxn&, const std::vector<Message>&)> local);

  // kBackground: waits until the broker answered every end queued so far.
  // OK, or TIMEOUT naming how many are still unconfirmed (their
  // transactions are then resolved by check-back if the ends never
  // arrive). OK at once in kConfirmed mode.
  Status FlushEnds(std::chrono::milliseconds timeout);

  // A plain (non-transactional) send on the same connection.
  Result<SendResult> Send(Message message);

  const ProducerOptions& options() const { return options_; }
  const std::string& client_id() const;

  class Impl;

 private:
  ProducerOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace txmq
