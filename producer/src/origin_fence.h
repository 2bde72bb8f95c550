// The producer side's fence for compensations: a compensation undoes only
// what this store committed. Like Inbox::Undo on the consumer side, a
// compensation that finds no record of its original leaves a fence, so the
// original, should it try to commit afterwards, fails ABORTED instead of
// taking effect with nothing left to undo it.
//
// The records it reads are written with the business rows:
//   - Outbox::Add       -> o/r/<message id>  (producer/src/outbox_row.h)
//   - TransactionProducer on a LocalStore -> t/r/<tx id> (store_checker.h)
#pragma once

#include <chrono>
#include <string>

#include "txmq/local_store.h"

namespace txmq::producer {

enum class Origin {
  kCommitted,     // this store committed the original: undo it
  kNotCommitted,  // it did not, and now never will here: nothing to undo
  kUndecided,     // cannot tell yet (still running, record expired, I/O error)
};

// What `store` knows of the original of a compensation: message
// `message_id`, sent in transaction `tx_id` (empty when it was not
// transactional). A fence for a message goes into `txn`, whose commit then
// depends on no commit of that message slipping in first; a transaction is
// fenced with its rollback tombstone. `horizon`: how long the producer side
// keeps its records. `why` says what was decided, for logs and records.
Origin CheckOrigin(LocalStore& store, LocalTxn& txn, const std::string& message_id,
                   const std::string& tx_id, std::chrono::milliseconds horizon, std::string* why);

}  // namespace txmq::producer
