// Compensations on the service's own SQLite database: how a producer
// whose outbox (or transaction records) live in SQLite undoes its
// change when a consumer's business step failed for good. The SQL twin of
// txmq/compensation.h, with the same rules.
//
//   auto inbox = txmq::sqlite::Inbox::Open({.path = "orders.db", .group = "orders-undo"});
//   txmq::Consumer undo_consumer({.broker = url, .group = "orders-undo"});
//   txmq::sqlite::OnCompensation(undo_consumer, **inbox, "orders",
//       [&](sqlite3* db, const txmq::Compensation& c) {
//         sqlite3_exec(db, "UPDATE orders SET status = 'cancelled' WHERE ...", ...);
//         return txmq::ConsumeResult::Success();    // commits with the inbox's record
//       });
//   undo_consumer.Start();
//
// The undo runs in the inbox's transaction (txmq/sqlite/inbox.h, BEGIN IMMEDIATE), keyed by
// "compensation/<original id>", so a compensation delivered several times
// (or sent by several failing consumers for one message) undoes once.
//
// With only_recorded (the default) the undo runs only for an original
// this database committed: a message added through a sqlite::Outbox on it
// (txmq_origin), or a transaction recorded by sqlite::TransactionRecords on it
// (txmq_tx). For anything else the compensation is acknowledged without
// running the undo, and Inbox::Lookup("compensation/<original id>") says
// kSkipped, with why. If the original has not committed yet, the
// compensation fences it in the same transaction: the original's Add then
// fails ABORTED (its RecordCommit CONFLICT, a check-back answers rollback),
// so its transaction cannot commit. SQLite's one writer at a time orders
// the original's transaction and the compensation's: committed first, it
// is undone; otherwise fenced. Never committed-and-not-undone.
//
// Thread safety: as the inbox's handlers. The inbox must outlive the
// consumer.
#pragma once

#include <functional>
#include <string>

#include "txmq/compensation.h"  // Compensation, CompensationOptions
#include "txmq/consumer.h"
#include "txmq/sqlite/inbox.h"
#include "txmq/status.h"

namespace txmq::sqlite {

using SqlCompensationHandler = std::function<ConsumeResult(sqlite3* db, const Compensation& c)>;

// Subscribes `consumer` (before its Start) to the compensations addressed
// to `producer_group` ("%COMP%<producer group>"), handled by
// CompensationHandler. INVALID_ARGUMENT names a bad argument.
Status OnCompensation(Consumer& consumer, Inbox& inbox, const std::string& producer_group,
                      SqlCompensationHandler undo, CompensationOptions options = {});

// The handler OnCompensation subscribes, for a consumer subscribed some
// other way. Creates or migrates the txmq_ outbox and transaction tables
// it reads; UNAVAILABLE when the database cannot be reached.
Result<Handler> CompensationHandler(Inbox& inbox, SqlCompensationHandler undo,
                                    CompensationOptions options = {});

}  // namespace txmq::sqlite
