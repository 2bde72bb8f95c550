// txmq::pg::Inbox: idempotent handlers on the service's own PostgreSQL
// database. The handler runs inside a transaction on a connection of the
// inbox, after the "processed" record of (group, message id) was inserted
// in that same transaction, so a redelivered message (delivery is
// at-least-once) is acknowledged without running the handler again, and
// two copies that arrive at once run it once.
//
//   auto inbox = txmq::pg::Inbox::Open({.conninfo = "dbname=inventory", .group = "inventory"});
//   consumer.Subscribe("order-created", (*inbox)->Idempotent(
//       [&](PGconn* conn, const txmq::Received& m) {
//         PQexec...(conn, "UPDATE stock ...");      // commits with the record, or neither
//         return txmq::ConsumeResult::Success();   // or RetryLater(): both rolled back
//       }));
//
// Dedup is insert-first: INSERT ... ON CONFLICT DO NOTHING on the record's
// primary key, never a SELECT ... FOR UPDATE of a row that may not exist
// (which locks nothing and lets two copies in, or deadlocks under gap
// locks elsewhere). A second copy's insert waits on the first copy's
// uncommitted record: if that commits, the second finds the conflict and
// is acknowledged as a duplicate; if it rolls back, the second runs.
// Correct under READ COMMITTED (the default) and REPEATABLE READ; under
// REPEATABLE READ the waiting copy gets a serialization failure and the
// inbox runs it again with a fresh snapshot, where it is a duplicate.
//
// A serialization failure or deadlock (the handler's own statements
// included) runs the handler again at once with a new transaction, up to
// 16 times, then gives the message back to the broker (retry later). A
// handler that returns RetryLater, throws, or leaves its transaction
// failed is rolled back, record included.
//
// Compensate(reason) is a business failure: the handler's writes are
// rolled back; the failure is recorded (state 'X', the reason) and the
// compensation message (consumer/src/compensation_message.h) is added to
// `outbox`, in one transaction, so the producer learns of the failure once
// (OnCompensation undoes its change: txmq/compensation.h on LevelDB,
// txmq/pg/compensation.h, txmq/sqlite/compensation.h). Without an outbox
// it is logged and retried later.
//
// Undo() handles messages that undo an earlier one (same semantics as
// txmq::Inbox::Undo): the undo runs once, after the original, in the same
// kind of transaction, and the original's record becomes 'U' (undone). If
// the undo arrives first, it inserts a fence ('F') and does no business
// work; the original, arriving later, finds the fence, is acknowledged
// without running and recorded as skipped ('S'): net effect zero. Both
// orders meet on the record's primary key, so an undo and its original
// running at once also end in one of the two.
//
//   consumer.Subscribe("order-cancelled", (*inbox)->Undo(
//       [&](PGconn* conn, const txmq::Received& m) {
//         PQexec...(conn, "UPDATE stock ... (give back)");
//         return txmq::ConsumeResult::Success();
//       },
//       [](const txmq::Received& m) { return m.body; }));  // the original's id
//
// Lookup(dedup key) tells which of these states a message is in.
//
// Records are kept for `horizon` and then removed, a batch at a time, at
// most once a minute from a handler call (or RemoveExpired).
//
// Thread safety: handlers made by an Inbox may run on many threads at
// once, each on its own pooled connection. The Inbox must outlive every
// consumer using its handlers.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "txmq/consumer.h"
#include "txmq/inbox.h"  // InboxState, InboxRecord, DedupKeyFn
#include "txmq/status.h"

struct pg_conn;  // libpq's PGconn

namespace txmq::pg {

class Outbox;

struct InboxOptions {
  // libpq connection string of the database with the business tables.
  std::string conninfo{};
  // The consumer group whose deliveries this inbox records (a dedup
  // namespace: two groups on one database do not see each other's).
  std::string group{};
  // How long records are kept; at least the broker's redelivery horizon.
  std::chrono::milliseconds horizon = std::chrono::hours(24 * 7);
  // Isolation level of the handler's transaction.
  bool repeatable_read = false;
  // Most pooled connections kept open (one per handler running at once;
  // more handlers than this open extra connections and close them after).
  int pool_size = 8;
  // Where compensations are sent from (an outbox on the same database);
  // needed only to use Compensate. It must outlive the handlers; its relay
  // need not run here.
  Outbox* outbox = nullptr;
};

using SqlHandler = std::function<ConsumeResult(pg_conn* conn, const Received& message)>;

class Inbox {
 public:
  // Connects and creates or migrates the txmq_ inbox table. INVALID_ARGUMENT
  // names a bad option; UNAVAILABLE when the database cannot be reached.
  static Result<std::unique_ptr<Inbox>> Open(InboxOptions options);
  ~Inbox();
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  // A consumer handler that runs `handler` once per dedup key (default:
  // the message id) of the group.
  Handler Idempotent(SqlHandler handler, DedupKeyFn dedup_key = nullptr);
  // A consumer handler for messages that undo the message whose dedup key
  // `undoes` returns (see above).
  Handler Undo(SqlHandler handler, DedupKeyFn undoes);
  // Whether the group has a committed record of `message_id` (in any state).
  Result<bool> Processed(const std::string& message_id);
  // The group's committed record of `dedup_key`; nullopt when there is none.
  Result<std::optional<InboxRecord>> Lookup(const std::string& dedup_key);
  const InboxOptions& options() const;
  // Removes records older than the horizon; how many.
  Result<int64_t> RemoveExpired();

  class Impl;

 private:
  explicit Inbox(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace txmq::pg
