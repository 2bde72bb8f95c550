// Compensations on the service's own PostgreSQL database: how a producer
// whose outbox (or transaction records) live in PostgreSQL undoes its
// change when a consumer's business step failed for good. The SQL twin of
// txmq/compensation.h, with the same rules.
//
//   auto inbox = txmq::pg::Inbox::Open({.conninfo = "dbname=orders", .group = "orders-undo"});
//   txmq::Consumer undo_consumer({.broker = url, .group = "orders-undo"});
//   txmq::pg::OnCompensation(undo_consumer, **inbox, "orders",
//       [&](PGconn* conn, const txmq::Compensation& c) {
//         PQexecParams(conn, "UPDATE orders SET status = 'cancelled' WHERE id = $1", ...);
//         return txmq::ConsumeResult::Success();    // commits with the inbox's record
//       });
//   undo_consumer.Start();
//
// The undo runs in the inbox's transaction (txmq/pg/inbox.h), keyed by
// "compensation/<original id>", so a compensation delivered several times
// (or sent by several failing consumers for one message) undoes once.
//
// With only_recorded (the default) the undo runs only for an original
// this database committed: a message added through a pg::Outbox on it
// (txmq_origin), or a transaction recorded by pg::TransactionRecords on it
// (txmq_tx). For anything else the compensation is acknowledged without
// running the undo, and Inbox::Lookup("compensation/<original id>") says
// kSkipped, with why. If the original has not committed yet, the
// compensation fences it in the same transaction: the original's Add then
// fails ABORTED (its RecordCommit CONFLICT, a check-back answers rollback),
// so its transaction cannot commit. An original whose transaction is
// running while the compensation arrives is waited for: committed, it is
// undone; rolled back, it is fenced. Never committed-and-not-undone.
//
// Thread safety: as the inbox's handlers. The inbox must outlive the
// consumer.
#pragma once

#include <functional>
#include <string>

#include "txmq/compensation.h"  // Compensation, CompensationOptions
#include "txmq/consumer.h"
#include "txmq/pg/inbox.h"
#include "txmq/status.h"

namespace txmq::pg {

using SqlCompensationHandler = std::function<ConsumeResult(pg_conn* conn, const Compensation& c)>;

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

}  // namespace txmq::pg
