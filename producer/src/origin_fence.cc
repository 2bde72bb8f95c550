#include "producer/src/origin_fence.h"

#include "producer/src/outbox_row.h"
#include "producer/src/store_checker.h"
#include "protocol/src/util.h"
#include "storage/src/local_store_impl.h"

namespace txmq::producer {

namespace {

// Margin for clocks when telling from a UUIDv7 id whether its record may
// have expired: as in the transaction checks.
constexpr int64_t kClockMarginMs = 30 * 60 * 1000;

Origin CheckTransaction(LocalStore& store, const std::string& tx_id,
                        std::chrono::milliseconds horizon, std::string* why) {
  if (!tx_id.starts_with(store.instance_id() + ":")) {
    *why = "transaction " + tx_id + " was not started by this store (" + store.instance_id() + ")";
    return Origin::kNotCommitted;
  }
  switch (ResolveTransaction(store, tx_id, horizon, why)) {
    case TxState::kCommit:
      *why = "transaction " + tx_id + " committed here";
      return Origin::kCommitted;
    case TxState::kRollback:
      *why = "transaction " + tx_id + " never committed here (rolled back)";
      return Origin::kNotCommitted;
    case TxState::kUnknown:
      return Origin::kUndecided;
  }
  return Origin::kUndecided;
}

Origin CheckMessage(LocalStore& store, LocalTxn& txn, const std::string& message_id,
                    std::chrono::milliseconds horizon, std::string* why) {
  auto read = outbox::ReadRecord(store, message_id);
  if (!read.ok()) {
    *why = "the record of message " + message_id + " cannot be read: " + read.status().ToString();
    return Origin::kUndecided;
  }
  const auto& record = *read;
  if (record && record->state == outbox::kCommitted) {
    *why = "message " + message_id + " committed here";
    return Origin::kCommitted;
  }
  if (record) {
    *why = "message " + message_id + " never committed here (fenced before: " + record->note + ")";
    return Origin::kNotCommitted;
  }
  // No record. For an id that says it is older than the horizon, that may
  // mean "committed, then its record removed": only an operator can tell.
  const int64_t born_ms = UuidV7Millis(message_id);
  if (born_ms >= 0 &&
      NowMs() - born_ms > horizon.count() - std::min(kClockMarginMs, horizon.count() / 2)) {
    *why = "no record of message " + message_id + ", but it is older than the record horizon (" +
           FormatDurationMs(horizon.count()) + "): it may have committed and its record expired";
    return Origin::kUndecided;
  }
  // Never committed here (yet): fence it, in the compensation's commit,
  // which fails ABORTED if the message commits first (then it is undone).
  const std::string note = "compensation arrived first";
  outbox::PutRecord(txn, message_id, outbox::kFenced, note);
  txn.impl().Require(outbox::RecordKey(message_id), [store = &store, message_id] {
    auto now = outbox::ReadRecord(*store, message_id);
    if (!now.ok()) return now.status();
    if (*now && (*now)->state == outbox::kCommitted) {
      return Status::Aborted("message " + message_id + " committed while its compensation ran");
    }
    return Status::OK();
  });
  *why = "no record of message " + message_id + " in this store: it never committed here; fenced";
  return Origin::kNotCommitted;
}

}  // namespace

Origin CheckOrigin(LocalStore& store, LocalTxn& txn, const std::string& message_id,
                   const std::string& tx_id, std::chrono::milliseconds horizon, std::string* why) {
  if (!tx_id.empty()) return CheckTransaction(store, tx_id, horizon, why);
  return CheckMessage(store, txn, message_id, horizon, why);
}

}  // namespace txmq::producer
