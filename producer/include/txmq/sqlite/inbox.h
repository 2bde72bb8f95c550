// txmq::sqlite::Inbox: idempotent handlers on the service's own SQLite
// database. The handler runs inside a BEGIN IMMEDIATE transaction on a
// handle of the inbox, after the "processed" record of (group, message id)
// was inserted in that same transaction, so a redelivered message is
// acknowledged without running the handler again, and two copies that
// arrive at once run it once.
//
//   auto inbox = txmq::sqlite::Inbox::Open({.path = "inventory.db", .group = "inventory"});
//   consumer.Subscribe("order-created", (*inbox)->Idempotent(
//       [&](sqlite3* db, const txmq::Received& m) {
//         sqlite3_exec(db, "UPDATE stock ...", ...);  // commits with the record, or neither
//         return txmq::ConsumeResult::Success();      // or RetryLater(): both rolled back
//       }));
//
// Dedup is insert-first: INSERT OR IGNORE on the record's primary key.
// SQLite runs one writer at a time, so a second copy's transaction starts
// only after the first one's committed (it is then a duplicate) or rolled
// back (it then runs).
//
// A handler that returns RetryLater or throws is rolled back, record
// included. Unlike PostgreSQL, SQLite keeps the transaction open after a
// failed statement (only that statement is undone), so the inbox cannot
// tell: a handler must return RetryLater when one of its statements fails
// (SQLITE_BUSY included), or the record commits without that write. A
// handler that ends the transaction itself is given back (retry later).
// Compensate(reason) rolls back the
// handler's writes, records the failure (state 'X') and adds the
// compensation message to `outbox` in one transaction, as the PostgreSQL
// inbox does (txmq/pg/inbox.h).
//
// Undo() handles messages that undo an earlier one, as the PostgreSQL
// inbox's Undo (txmq/pg/inbox.h): the undo runs once, after the original;
// an undo that arrives first leaves a fence ('F') and does no business
// work, and the original, arriving later, is acknowledged without running
// (skipped, 'S'). Lookup(dedup key) tells the state.
//
//   consumer.Subscribe("order-cancelled", (*inbox)->Undo(
//       [&](sqlite3* db, const txmq::Received& m) { ...; return txmq::ConsumeResult::Success(); },
//       [](const txmq::Received& m) { return m.body; }));  // the original's id
//
// Thread safety: handlers may run on many threads at once, each on its own
// pooled handle; their transactions take turns on the database's write
// lock (waiting up to busy_timeout). The Inbox must outlive every consumer
// using its handlers.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "txmq/consumer.h"
#include "txmq/inbox.h"  // InboxState, InboxRecord, DedupKeyFn
#include "txmq/status.h"

struct sqlite3;

namespace txmq::sqlite {

class Outbox;

struct InboxOptions {
  // The database file with the business tables.
  std::string path{};
  // The consumer group whose deliveries this inbox records.
  std::string group{};
  // How long records are kept; at least the broker's redelivery horizon.
  std::chrono::milliseconds horizon = std::chrono::hours(24 * 7);
  // How long a handler's transaction waits for the write lock; past it the
  // message is given back to the broker (retry later).
  std::chrono::milliseconds busy_timeout{5000};
  // Most pooled handles kept open.
  int pool_size = 4;
  // Where compensations are sent from (an outbox on the same file).
  Outbox* outbox = nullptr;
};

using SqlHandler = std::function<ConsumeResult(sqlite3* db, const Received& message)>;

class Inbox {
 public:
  // Opens the file and creates or migrates the txmq_ inbox table.
  static Result<std::unique_ptr<Inbox>> Open(InboxOptions options);
  ~Inbox();
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  // Once per dedup key (default: the message id) of the group.
  Handler Idempotent(SqlHandler handler, DedupKeyFn dedup_key = nullptr);
  // For messages that undo the message whose dedup key `undoes` returns.
  Handler Undo(SqlHandler handler, DedupKeyFn undoes);
  // Whether the group has a committed record of `message_id` (any state).
  Result<bool> Processed(const std::string& message_id);
  // The group's committed record of `dedup_key`; nullopt when none.
  Result<std::optional<InboxRecord>> Lookup(const std::string& dedup_key);
  const InboxOptions& options() const;
  Result<int64_t> RemoveExpired();

  class Impl;

 private:
  explicit Inbox(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace txmq::sqlite
