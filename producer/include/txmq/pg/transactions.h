// txmq::pg::TransactionRecords: check-back answers for a TransactionProducer
// whose local transactions run in the service's PostgreSQL database. The
// local transaction inserts a commit record of its transaction id with
// its business rows; a check answers from that record, on any instance of
// the service (the database is shared).
//
//   auto records = txmq::pg::TransactionRecords::Open({.conninfo = "dbname=orders"});
//   txmq::TransactionProducer producer({.broker = url, .group = "orders"},
//                                      (*records)->Checker());
//   producer.SendInTransaction(message, [&](const txmq::Message& m) {
//     PQexec(conn, "BEGIN");
//     PQexec(conn, "INSERT INTO orders ...");
//     if (!(*records)->RecordCommit(conn, m).ok()) { PQexec(conn, "ROLLBACK"); return kRollback; }
//     return ok(PQexec(conn, "COMMIT")) ? txmq::TxState::kCommit : txmq::TxState::kRollback;
//   });
//
// A check inserts a rollback tombstone with ON CONFLICT DO NOTHING, waiting
// at most `lock_wait` for a row lock:
// - the local transaction inserted its record and has not ended: the
//   check's insert waits on it; at `lock_wait` the answer is UNKNOWN (the
//   broker asks again later), never ROLLBACK while it can still commit;
// - its record is committed: COMMIT;
// - there is no record: the tombstone is written and the answer is
//   ROLLBACK; a local transaction that inserts its record later fails with
//   a unique violation, so it cannot commit what the check rolled back;
// - the transaction is older than `horizon` and has no record: UNKNOWN
//   (its record may have been removed), left to an operator.
//
// Thread safety: all methods may be called from any thread; checks run on
// pooled connections.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "txmq/message.h"
#include "txmq/status.h"
#include "txmq/transaction_producer.h"

struct pg_conn;  // libpq's PGconn

namespace txmq::pg {

struct TransactionRecordOptions {
  // libpq connection string of the database the local transactions use.
  std::string conninfo{};
  // How long a check waits for a running local transaction's record lock
  // before it answers UNKNOWN.
  std::chrono::milliseconds lock_wait{500};
  // How long records are kept; at least as long as a transaction may stay
  // unresolved at the broker (its check-backs and stuck time).
  std::chrono::milliseconds horizon = std::chrono::hours(24 * 7);
  // Most idle pooled connections.
  int pool_size = 4;
};

class TransactionRecords {
 public:
  // Connects and creates or migrates the txmq_tx table.
  static Result<std::unique_ptr<TransactionRecords>> Open(TransactionRecordOptions options);
  ~TransactionRecords();
  TransactionRecords(const TransactionRecords&) = delete;
  TransactionRecords& operator=(const TransactionRecords&) = delete;

  // Inside the local transaction open on `conn`: records that the
  // transaction `message` belongs to commits with it. CONFLICT when a check
  // rolled it back first (the caller's transaction has failed: roll back);
  // FAILED_PRECONDITION outside a transaction or for a message without a
  // transaction id.
  Status RecordCommit(pg_conn* conn, const Message& message);

  // The check-back answer for `check` (see above), and the checker that
  // gives it to a TransactionProducer.
  TxState Check(const CheckRequest& check, std::string* why = nullptr);
  TransactionChecker Checker();

  // Removes records older than the horizon; how many.
  Result<int64_t> RemoveExpired();

  class Impl;

 private:
  explicit TransactionRecords(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace txmq::pg
