// txmq::Outbox: the local message table. A message added inside a
// LocalTxn commits with the service's own rows or not at all; a relay
// thread then sends it, retrying until the broker acknowledges it.
//
//   auto store = txmq::LocalStore::Open("./orders-db");
//   txmq::Outbox outbox(**store, {.producer = {.broker = url, .group = "orders"}});
//   outbox.Start();
//   auto tx = (*store)->Begin();
//   tx.Put("order/42", row);
//   outbox.Add(tx, {.topic = "order-created", .key = "42", .body = row});
//   tx.Commit();                       // the relay sends it from here on
//
// Guarantees: a row is sent with its row id as the message id, so a resend
// (after a timeout or a crash) is stored once by the broker's dedup window;
// a row is deleted only after the broker acknowledged it; rows of one key
// are sent in commit order, and a row that keeps failing delays only the
// later rows of its own key. A row the broker refuses for good (invalid
// topic, too large) is parked with its error for an operator to requeue or
// delete; transient failures are retried with capped, jittered backoff,
// forever by default (max_attempts / max_age park them too). A parked row
// holds the later rows of its key until it is requeued or deleted, so a
// key's rows still arrive in commit order (hold_key_behind_parked). Nothing
// is dropped silently. When the store refuses the relay's own write (the
// deletion of an acknowledged row, a row's attempt count), the row stays
// pending and is sent again later, until its deletion is written (the
// broker stores the id once); stats().last_error and the log say why, and
// Flush waits for it.
//
// Thread safety: every method may be called from any thread, also while
// Start or Shutdown runs on another (those two run one at a time). Add
// works whether the relay runs or not: a committed row waits in the store
// until a relay sends it, also when the commit comes after this Outbox is
// destroyed. The relay is one library thread ("txmq-relay").
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "txmq/local_store.h"
#include "txmq/message.h"
#include "txmq/producer.h"
#include "txmq/status.h"

namespace txmq {

struct OutboxOptions {
  // Broker, producer group and per-send timeout used by the relay.
  ProducerOptions producer{};
  // Backoff of one row: initial * 2^(attempts-1), with jitter, capped.
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{60000};
  // Give up (park) a row that keeps failing transiently after this many
  // attempts or this age; 0 = never (a broker that is merely away is
  // waited for).
  int max_attempts = 0;
  std::chrono::milliseconds max_age{0};
  // Most rows sent and not yet acknowledged.
  int max_in_flight = 256;
  // true: a parked row holds the later rows of its key (they stay pending,
  // counted in stats().blocked and shown by `txmqctl outbox list`) until an
  // operator requeues or deletes it; a key's rows arrive in commit order.
  // false: later rows of the key go on without it, and a requeued row
  // arrives after them. Rows without a key never wait for another row.
  bool hold_key_behind_parked = true;
  // How long the store remembers each message it committed, after it was
  // sent: a compensation for it (OnCompensation) runs the undo only while
  // this record exists. At least as long as a compensation may take to
  // come back.
  std::chrono::milliseconds record_horizon = std::chrono::hours(24 * 7);
};

struct OutboxStats {
  uint64_t pending = 0;
  uint64_t parked = 0;
  uint64_t sent = 0;  // since Start
  // Pending rows waiting behind a parked row of their key (counted in
  // pending too).
  uint64_t blocked = 0;
  std::chrono::milliseconds oldest_pending_age{0};
  std::string last_error{};
};

// One row, as operators see it.
struct OutboxRow {
  std::string id{};  // also the message id
  uint64_t seq = 0;  // commit order
  bool parked = false;
  Message message{};
  uint32_t attempts = 0;
  std::string last_error{};
  std::chrono::system_clock::time_point created_at{};
  std::chrono::system_clock::time_point next_attempt_at{};
  // A pending row behind a parked row of its key: that row's id. It waits
  // until that row is requeued or deleted (see hold_key_behind_parked).
  std::string blocked_by{};
};

class Outbox {
 public:
  Outbox(LocalStore& store, OutboxOptions options);
  // Shutdown().
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Loads pending and parked rows from the store and starts the relay.
  // FAILED_PRECONDITION if it runs already; after Shutdown it may start
  // again.
  Status Start();
  // Stops the relay and waits for it; sends in flight end (an
  // acknowledged row is deleted), rows not acknowledged stay pending for
  // the next Start (in this process or after a restart). Idempotent.
  void Shutdown();

  // Adds the message to `txn`: it is sent if and only if `txn` commits.
  // Assigns a UUIDv7 id when the message has none. INVALID_ARGUMENT for a
  // reserved property other than txmq.compensate-to (txmq/properties.h).
  // The commit also records that this store committed the message (see
  // record_horizon); it fails ABORTED if a compensation for this message id
  // arrived first (the message was fenced: it must never take effect now).
  Status Add(LocalTxn& txn, Message message);

  // Waits until no row is pending (parked rows do not count): OK. TIMEOUT
  // saying how many are left; FAILED_PRECONDITION at once (or when
  // Shutdown stops the relay meanwhile) if the relay does not run, or if
  // the rows left all wait behind parked rows.
  Status Flush(std::chrono::milliseconds timeout);
  OutboxStats stats() const;

  // Moves a parked row back to pending (attempts reset) and lets the
  // running relay send it, and the rows of its key that waited behind it.
  // NOT_FOUND if no parked row has that id.
  Status Requeue(const std::string& id);
  // Deletes a parked row (it is never sent) and lets the rows of its key
  // that waited behind it go on. NOT_FOUND if no parked row has that id.
  Status Delete(const std::string& id);

  // --- operators, offline: for a store no running Outbox serves (txmqctl) ---
  // Requeue and Delete write one audit line ([txmq.audit]) naming
  // `operator_name`, the row and the result.
  static std::vector<OutboxRow> List(LocalStore& store, bool parked);
  // Moves a parked row back to pending (attempts reset). NOT_FOUND if no
  // parked row has that id.
  static Status Requeue(LocalStore& store, const std::string& id, const std::string& operator_name);
  // Deletes a pending or parked row: it will never be sent.
  static Status Delete(LocalStore& store, const std::string& id, const std::string& operator_name);

  class Impl;
  Impl& impl() { return *impl_; }  // library internal

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace txmq
