#include "producer/src/sql/origin_check.h"

#include <algorithm>

#include "protocol/src/util.h"

namespace txmq::sql {

namespace {

// Margin for clocks when telling from a UUIDv7 id whether its record may
// have expired: as origin_fence.cc.
constexpr int64_t kClockMarginMs = 30 * 60 * 1000;
// The same for a message id against the time of the upgrade that began
// origin records: the service's clock against the database's.
constexpr int64_t kUpgradeMarginMs = 5 * 60 * 1000;

bool MayHaveExpired(const std::string& message_id, std::chrono::milliseconds horizon) {
  const int64_t born_ms = UuidV7Millis(message_id);
  return born_ms >= 0 &&
         NowMs() - born_ms > horizon.count() - std::min(kClockMarginMs, horizon.count() / 2);
}

Origin FromState(const std::string& what, const OriginRecord& record, std::string* why) {
  if (record.state == "C") {
    *why = what + " committed here";
    return Origin::kCommitted;
  }
  *why = what + " never committed here (fenced before" +
         (record.note.empty() ? std::string(")") : ": " + record.note + ")");
  return Origin::kNotCommitted;
}

}  // namespace

Result<Origin> CheckOrigin(OriginTables& tables, const std::string& message_id,
                           const std::string& tx_id, std::chrono::milliseconds horizon,
                           std::string* why) {
  const bool transactional = !tx_id.empty();
  const std::string what = transactional ? "transaction " + tx_id + " (message " + message_id + ")"
                                         : "message " + message_id;
  auto read = [&]() {
    return transactional ? tables.Transaction(tx_id) : tables.Message(message_id);
  };
  // A record this old may have been removed, or never written (added
  // before the outbox tables had origin records): never fence, only read.
  std::string unsure;
  if (MayHaveExpired(message_id, horizon)) {
    unsure = "it is older than the record horizon (" + FormatDurationMs(horizon.count()) +
             "): it may have committed and its record expired";
  } else if (!transactional) {
    auto since = tables.OriginsSinceMs();
    if (!since.ok()) return since.status();
    const int64_t born_ms = UuidV7Millis(message_id);
    if (born_ms >= 0 && *since && born_ms < **since + kUpgradeMarginMs) {
      unsure =
          "it is older than this database's origin records (the outbox tables' version 2"
          "): it may have committed before they began";
    }
  }
  if (!unsure.empty()) {
    auto record = read();
    if (!record.ok()) return record.status();
    if (*record) return FromState(what, **record, why);
    *why = "no record of " + what + ", but " + unsure;
    return Origin::kUndecided;
  }
  const std::string note = "compensation arrived first";
  auto fenced = transactional ? tables.InsertTransaction(tx_id, "R")
                              : tables.InsertMessage(message_id, "F", note);
  if (!fenced.ok()) return fenced.status();
  if (*fenced) {
    *why = "no record of " + what + " in this database: it never committed here; fenced";
    return Origin::kNotCommitted;
  }
  auto record = read();
  if (!record.ok()) return record.status();
  if (!*record) return Status::Internal("the record of " + what + " vanished while read");
  return FromState(what, **record, why);
}

}  // namespace txmq::sql
