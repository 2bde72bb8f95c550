// Transactions recorded in a LocalStore, and the check-back answers that
// follow from them.
//
//   t/r/<tx id>                 -> 'C' | 'R'  committed locally | rolled back by a check
//   t/e/<time_ms:be64><tx id>   -> ""         retention index (records go after the horizon)
//
// The record and the business rows commit in one batch, under the key lock
// of the record; a check takes the same lock, so "the local transaction
// committed" and "the check rolled it back" can never both happen.
#pragma once

#include <chrono>
#include <string>

#include "txmq/local_store.h"
#include "txmq/transaction_producer.h"

namespace txmq::producer {

class StoreTransactions {
 public:
  StoreTransactions(LocalStore& store, std::chrono::milliseconds horizon);

  // "<instance id>:<uuidv7>": the store that started it is in the id.
  std::string NewTransactionId() const;

  // Between these two the local transaction is running: checks answer
  // UNKNOWN (after waiting a little for it to finish), whichever producer on
  // the store gets them.
  void Begin(const std::string& tx_id);
  void End(const std::string& tx_id);

  // Adds the commit record to `txn`; its Commit then fails ABORTED if a
  // check rolled the transaction back first.
  void RecordCommit(LocalTxn& txn, const std::string& tx_id);

  // The check-back answer for `tx_id`.
  TxState Check(const std::string& tx_id, std::string* why);

 private:
  LocalStore& store_;
  std::string prefix_;  // "<instance id>:"
  std::chrono::milliseconds horizon_;
};

// What `store` knows of `tx_id`, a transaction started by this store (its
// id begins with the store's instance id): COMMIT when its record says so;
// UNKNOWN while it is still running, or when it has no record but is older
// than `horizon` (the record may have been removed); otherwise ROLLBACK,
// after writing the rollback tombstone that makes a late local commit fail.
TxState ResolveTransaction(LocalStore& store, const std::string& tx_id,
                           std::chrono::milliseconds horizon, std::string* why);

}  // namespace txmq::producer
