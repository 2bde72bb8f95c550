// txmq::Producer: sends messages to a txmq broker.
//
//   txmq::Producer producer({.broker = "tcp://127.0.0.1:7800", .group = "orders"});
//   if (txmq::Status s = producer.Start(); !s.ok()) ...
//   txmq::Result<txmq::SendResult> r =
//       producer.Send({.topic = "order-created", .key = "42", .body = "..."});
//
// A send is answered once the message is durable under the broker's flush
// mode. On a timeout or an unreachable broker the producer resends with the
// same message id (up to `retries` times); the broker's dedup window makes
// the retry store nothing new, so a retried message is stored once.
//
// Thread safety: all methods may be called from any thread, Shutdown also
// while other threads are inside Send (they get a status, never a crash).
// Callbacks of
// SendAsync run on the producer's I/O thread: keep them short, never block
// in them, never call Send (the sync one) from them.
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>

#include "txmq/message.h"
#include "txmq/status.h"

namespace txmq {

// How a TransactionProducer tells the broker what the local transaction
// decided (see txmq/transaction_producer.h).
enum class TransactionEndMode {
  // SendInTransaction returns once the broker has durably recorded the
  // outcome: two round trips per transaction; TransactionResult::outcome
  // says what the broker recorded, ABORTED and CONFLICT are reported.
  kConfirmed,
  // SendInTransaction returns once the local transaction decided; the end
  // is sent in the background, riding on the producer's next half message
  // when one goes out soon, else on its own, retried until the broker
  // answers. One round trip per transaction; the result says
  // `end_pending` and outcome kUnknown. An end that never arrives (the
  // producer dies first) is learnt by check-back, so the checker (or the
  // LocalStore) must answer from the local commit, as always.
  kBackground,
};

struct ProducerOptions {
  // Broker endpoint, or a replicated group's nodes comma-separated
  // ("tcp://10.0.0.1:7800,tcp://10.0.0.2:7800"): the producer finds the
  // group's leader and follows it across failovers; a send keeps its
  // message id on every attempt, so one the old leader stored is not
  // stored again. Each attempt's send_timeout bounds the search.
  std::string broker = "tcp://127.0.0.1:7800";
  // CURVE, for a broker started with --curve-secret-key: the file of this
  // client's secret key (`txmqctl keygen NAME` writes NAME.key; the public
  // key is derived from it) and the file of the broker's public key (its
  // NAME.pub), which pins the broker: another key never gets an answer.
  // Both or neither; neither talks plaintext. Read at Start(); a broker
  // that refuses the key fails calls with PERMISSION_DENIED.
  std::string curve_key{};
  std::string server_key{};
  // Producer group: producers of one group answer each other's transaction
  // checks. [A-Za-z0-9_.-]{1,127}.
  std::string group = "default";
  // How long one attempt waits for the broker's answer.
  std::chrono::milliseconds send_timeout{3000};
  // Further attempts after a timeout or an unreachable broker (same message
  // id each time). Refusals (bad topic, too large) are never retried, nor is
  // RESOURCE_EXHAUSTED (disk low, a limit reached): it is returned at once
  // for the caller to retry later; the outbox relay does so with backoff.
  int retries = 2;
  // Identifies this producer instance to the broker; a new UUIDv7 if empty.
  std::string client_id{};
  // TransactionProducer only: threads that run the checker.
  int checker_threads = 2;
  // TransactionProducer on a LocalStore only: how long its transaction
  // records are kept for check-backs (longer than any broker keeps asking;
  // at least 1 h). A check that finds no record of a transaction older than
  // this answers UNKNOWN, not ROLLBACK.
  std::chrono::milliseconds transaction_record_horizon = std::chrono::hours(24 * 7);
  // TransactionProducer only: how outcomes reach the broker. kConfirmed by
  // default, so that an OK result means the broker recorded the outcome;
  // kBackground saves a round trip per transaction.
  TransactionEndMode end_mode = TransactionEndMode::kConfirmed;
  // TransactionProducer only: most SendInTransactionAsync transactions in
  // flight at once (half sent, not yet completed); a further call waits
  // for one to complete. At least 1.
  int transaction_window = 64;
  // TransactionProducer only: library threads that run the local
  // transactions of SendInTransactionAsync. With 1, they run one at a time,
  // in the order their half messages were stored.
  int local_threads = 1;
};

using SendCallback = std::function<void(Result<SendResult>)>;

class Producer {
 public:
  explicit Producer(ProducerOptions options);
  // Shutdown() if still running.
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Validates the options and connects (in the background). Sends made
  // before the broker is reachable wait up to their timeout. A producer
  // starts once: FAILED_PRECONDITION after Shutdown.
  Status Start();
  // Closes the connection without waiting for the broker: sends in flight
  // complete with UNAVAILABLE "producer shut down" (the message may have
  // been stored: resending it with the same id elsewhere is safe), later
  // calls fail FAILED_PRECONDITION. Returns once no other thread uses the
  // connection any more. Idempotent.
  void Shutdown();

  // Sends and waits for the durable acknowledgement. INVALID_ARGUMENT for
  // a reserved property other than txmq.compensate-to
  // (txmq/properties.h); TOO_LARGE above the broker's max_message_bytes.
  Result<SendResult> Send(Message message);
  std::future<Result<SendResult>> SendAsync(Message message);
  void SendAsync(Message message, SendCallback callback);

  const ProducerOptions& options() const { return options_; }
  // This instance's id as the broker knows it (valid once Start() returned
  // OK, also after Shutdown).
  const std::string& client_id() const;

  class Impl;
  Impl& impl() { return *impl_; }  // library internal

 private:
  ProducerOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace txmq
