// What a compensation on a SQL database knows of its original, the part
// both backends share (pg_compensation.cc, sqlite_compensation.cc); the
// SQL twin of origin_fence.h on a LocalStore.
//
// The records it reads are written with the business rows:
//   - pg/sqlite Outbox::Add          -> txmq_origin (message id, 'C')
//   - TransactionRecords::RecordCommit -> txmq_tx (transaction id, 'C')
//
// No record means "not committed yet" (or never, or another database's):
// the check then inserts a fence with the same primary key, 'F' in
// txmq_origin or the rollback tombstone 'R' in txmq_tx, in the
// compensation's transaction. Whichever insert comes second conflicts:
//   - the original's is still uncommitted: PostgreSQL makes the fence's
//     insert wait for it; committed, the fence finds 'C' and the undo runs;
//     rolled back, the fence goes in;
//   - the fence is in (committed or not): the original's insert fails, so
//     its transaction cannot commit (Add: ABORTED; RecordCommit: CONFLICT).
// SQLite runs one writer at a time, which orders the two the same way.
// So "the original committed and was not undone" cannot happen.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "txmq/status.h"

namespace txmq::sql {

enum class Origin {
  kCommitted,     // this database committed the original: undo it
  kNotCommitted,  // it did not, and now never will here: nothing to undo
  kUndecided,     // cannot tell (the record may have expired): retry later
};

// A record's state and note.
struct OriginRecord {
  std::string state;
  std::string note;
};

// The statements of one backend, run in the compensation's open
// transaction.
class OriginTables {
 public:
  virtual ~OriginTables() = default;
  // Inserts (`id`, `state`, `note`) into txmq_origin unless a row of `id`
  // exists (ON CONFLICT DO NOTHING); whether it inserted.
  virtual Result<bool> InsertMessage(const std::string& id, const char* state,
                                     const std::string& note) = 0;
  virtual Result<std::optional<OriginRecord>> Message(const std::string& id) = 0;
  // The same for txmq_tx (which has no note).
  virtual Result<bool> InsertTransaction(const std::string& tx, const char* state) = 0;
  virtual Result<std::optional<OriginRecord>> Transaction(const std::string& tx) = 0;
  // Since when (ms since the epoch) every Add records its origin: the
  // outbox tables' upgrade to version 2; nullopt when they were created
  // at version 2 or later (always).
  virtual Result<std::optional<int64_t>> OriginsSinceMs() = 0;
};

// What the database knows of message `message_id`, sent in transaction
// `tx_id` (empty when it was not transactional); fences it when it knows
// nothing and the original is younger than `horizon` (how long the
// producer side keeps its records) and than the origin records (a
// message added before the database had them may have committed). `why` says what was decided.
// Errors are the database's (run the compensation again).
// True (SQL, both dialects) for an origin record whose row is still in
// the outbox (pending, parked, retried): its message was not sent, so the
// record's horizon has not begun; retention keeps it.
inline constexpr const char* kOriginStillInOutbox =
    "EXISTS (SELECT 1 FROM txmq_outbox o WHERE o.id = txmq_origin.message_id)";

Result<Origin> CheckOrigin(OriginTables& tables, const std::string& message_id,
                           const std::string& tx_id, std::chrono::milliseconds horizon,
                           std::string* why);

}  // namespace txmq::sql
