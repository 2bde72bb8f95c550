#include "producer/src/sql/tx_records.h"

#include "protocol/src/util.h"
#include "txmq/properties.h"

namespace txmq::sql {

Result<std::string> TransactionIdOf(const Message& message) {
  const std::string* tx = property::Find(message.properties, property::kTransactionId);
  if (tx == nullptr || tx->empty()) {
    return Status::FailedPrecondition(
        "message " + message.id +
        " has no transaction id: record the commit of a message SendInTransaction passed to "
        "the local transaction");
  }
  return *tx;
}

Status RolledBackByCheck(const std::string& tx) {
  return Status::Conflict("transaction " + tx +
                          " was rolled back by a check-back (or fenced by a compensation) "
                          "before its local transaction recorded its commit; roll the local "
                          "transaction back");
}

bool BeyondHorizon(const CheckRequest& check, std::chrono::milliseconds horizon) {
  const auto age = std::chrono::system_clock::now() - check.born_at;
  return check.born_at.time_since_epoch().count() > 0 && age > horizon;
}

TxState FromRecord(const std::optional<std::string>& state, std::chrono::milliseconds horizon,
                   std::string* why) {
  if (!state) {
    *why = "no record, and the transaction is older than the records' horizon (" +
           FormatDurationMs(horizon.count()) + "): an operator decides";
    return TxState::kUnknown;
  }
  if (*state == "C") {
    *why = "its local transaction committed";
    return TxState::kCommit;
  }
  *why = "a check rolled it back before";
  return TxState::kRollback;
}

TxState DatabaseUnknown(const Status& s, std::string* why) {
  *why = "the database could not tell: " + s.ToString();
  return TxState::kUnknown;
}

void LogCheck(spdlog::logger& log, const CheckRequest& check, TxState state,
              const std::string& why) {
  log.info("check of transaction {} (group '{}', check {}): {} ({})", check.transaction_id,
           check.producer_group, check.check_count, TxStateName(state), why);
}

}  // namespace txmq::sql
