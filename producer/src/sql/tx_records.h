// What the SQL backends' TransactionRecords share (pg_transactions.cc,
// sqlite_transactions.cc): the rules a check-back answer follows once the
// backend has tried its tombstone, and the messages users see.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "protocol/src/log.h"
#include "txmq/message.h"
#include "txmq/status.h"
#include "txmq/transaction_producer.h"

namespace txmq::sql {

// The transaction id whose commit RecordCommit records; FAILED_PRECONDITION
// for a message without one.
Result<std::string> TransactionIdOf(const Message& message);

// RecordCommit's CONFLICT: a check rolled `tx` back first.
Status RolledBackByCheck(const std::string& tx);

// A check of a transaction older than `horizon` only reads: its record
// may have been removed, so a tombstone could roll back a commit.
bool BeyondHorizon(const CheckRequest& check, std::chrono::milliseconds horizon);

// The answer from the record's state ('C', 'R'; nullopt: no record) when
// the check wrote no tombstone.
TxState FromRecord(const std::optional<std::string>& state, std::chrono::milliseconds horizon,
                   std::string* why);

// UNKNOWN because the database failed.
TxState DatabaseUnknown(const Status& s, std::string* why);

// The log line of every answer.
void LogCheck(spdlog::logger& log, const CheckRequest& check, TxState state,
              const std::string& why);

}  // namespace txmq::sql
