// txmq::sqlite::TransactionRecords: check-back answers for a
// TransactionProducer whose local transactions run in the service's SQLite
// database. The local transaction inserts a commit record of its
// transaction id with its business rows; a check answers from that record,
// in any process on the database file.
//
//   auto records = txmq::sqlite::TransactionRecords::Open({.path = "orders.db"});
//   txmq::TransactionProducer producer({.broker = url, .group = "orders"},
//                                      (*records)->Checker());
//   producer.SendInTransaction(message, [&](const txmq::Message& m) {
//     sqlite3_exec(db, "BEGIN IMMEDIATE", ...);
//     sqlite3_exec(db, "INSERT INTO orders ...", ...);
//     if (!(*records)->RecordCommit(db, m).ok()) { ROLLBACK; return kRollback; }
//     return COMMIT ok ? txmq::TxState::kCommit : txmq::TxState::kRollback;
//   });
//
// A check writes a rollback tombstone with INSERT OR IGNORE in a BEGIN
// IMMEDIATE transaction that waits at most `lock_wait` for the write lock:
// - a local transaction holds the write lock (it may be the one checked):
//   at `lock_wait` the answer is UNKNOWN (the broker asks again later),
//   never ROLLBACK while it can still commit;
// - its record is committed: COMMIT;
// - there is no record: the tombstone is written and the answer is
//   ROLLBACK; a local transaction that records its commit later fails
//   with CONFLICT, so it cannot commit what the check rolled back;
// - the transaction is older than `horizon` and has no record: UNKNOWN.
//
// Thread safety: all methods may be called from any thread; checks run on
// pooled handles.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "txmq/message.h"
#include "txmq/status.h"
#include "txmq/transaction_producer.h"

struct sqlite3;

namespace txmq::sqlite {

struct TransactionRecordOptions {
  // The database file the local transactions use.
  std::string path{};
  // How long a check waits for the database's write lock before it
  // answers UNKNOWN.
  std::chrono::milliseconds lock_wait{500};
  // How long records are kept.
  std::chrono::milliseconds horizon = std::chrono::hours(24 * 7);
  int pool_size = 2;
};

class TransactionRecords {
 public:
  // Opens the file and creates or migrates the txmq_tx table.
  static Result<std::unique_ptr<TransactionRecords>> Open(TransactionRecordOptions options);
  ~TransactionRecords();
  TransactionRecords(const TransactionRecords&) = delete;
  TransactionRecords& operator=(const TransactionRecords&) = delete;

  // Inside the local transaction open on `db`: records that the transaction
  // `message` belongs to commits with it. CONFLICT when a check rolled it
  // back first (roll the local transaction back); FAILED_PRECONDITION
  // outside a transaction or for a message without a transaction id.
  Status RecordCommit(sqlite3* db, const Message& message);

  TxState Check(const CheckRequest& check, std::string* why = nullptr);
  TransactionChecker Checker();

  Result<int64_t> RemoveExpired();

  class Impl;

 private:
  explicit TransactionRecords(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace txmq::sqlite
