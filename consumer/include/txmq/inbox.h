// txmq::Inbox: idempotent handlers on a LocalStore. A handler gets a
// LocalTxn; its writes and the "processed" record of the message commit in
// one batch, so a redelivered message (delivery is at-least-once) is
// acknowledged without running the handler again, and two copies that
// arrive at once run it once.
//
//   txmq::Inbox inbox(*store, {.group = "inventory", .outbox = &outbox});
//   consumer.Subscribe("order-created", inbox.Idempotent(
//       [&](txmq::LocalTxn& tx, const txmq::Received& m) {
//         if (!in_stock(m)) return txmq::ConsumeResult::Compensate("out of stock");
//         tx.Put("reserved/" + m.key, m.body);
//         return txmq::ConsumeResult::Success();   // or RetryLater(): transient, no compensation
//       }));
//
// Handlers may run on many threads at once, also for the same business
// keys: a commit whose reads changed meanwhile is ABORTED (see LocalTxn)
// and the inbox runs the handler again at once with a fresh transaction,
// up to 16 times, before giving the message back to the broker (retry
// later). So a handler may run more than once for one message, but only
// one run commits; keep side effects outside the LocalTxn out of it.
//
// Compensate(reason) is a business failure: the handler's writes are
// dropped, the failure is recorded, and a compensation message (original
// id, transaction id, key, group, reason) goes into this service's outbox
// in the same batch, addressed to the producer group's compensation topic
// "%COMP%<producer group>" (or the topic the original names in its
// txmq.compensate-to property, txmq::property::kCompensateTo). The
// producer undoes its change with OnCompensation (see txmq/compensation.h).
//
// Undo() handles messages that undo an earlier one: the undo runs once,
// after the original. If it arrives first, the inbox records a fence, the
// undo does no business work, and the original, arriving later, is
// acknowledged without running: net effect zero, and Lookup says so.
//
// Records are kept for `horizon` (at least as long as the broker may
// redeliver) and then removed in the background.
//
// Thread safety: handlers made by an Inbox may run on many threads at once.
// The Inbox (and its store) must outlive every consumer using its handlers.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "txmq/consumer.h"
#include "txmq/local_store.h"
#include "txmq/outbox.h"

namespace txmq {

struct InboxOptions {
  // The consumer group whose deliveries this inbox records (a dedup
  // namespace: two groups on one store do not see each other's records).
  std::string group{};
  // How long records are kept; at least the broker's redelivery horizon.
  std::chrono::milliseconds horizon = std::chrono::hours(24 * 7);
  // Where compensations are sent from; needed only to use Compensate. It
  // must outlive the handlers; its relay need not run (a compensation
  // waits in the store until it does).
  Outbox* outbox = nullptr;
};

enum class InboxState {
  kProcessed,    // the handler ran and committed
  kCompensated,  // the handler reported a business failure; compensation sent
  kUndone,       // processed, then undone by an Undo message
  kFenced,       // an Undo arrived first: the original must not run
  kSkipped,      // the original arrived after its Undo and was not run
};
const char* InboxStateName(InboxState state);

struct InboxRecord {
  InboxState state = InboxState::kProcessed;
  std::chrono::system_clock::time_point at{};
  std::string note{};  // compensation reason, who undid it, ...
};

using TxnHandler = std::function<ConsumeResult(LocalTxn&, const Received&)>;
using DedupKeyFn = std::function<std::string(const Received&)>;

class Inbox {
 public:
  Inbox(LocalStore& store, InboxOptions options);

  // At most once per dedup key (default: the message id).
  Handler Idempotent(TxnHandler handler, DedupKeyFn dedup_key = nullptr);
  // For messages that undo the message whose dedup key `undoes` returns.
  Handler Undo(TxnHandler handler, DedupKeyFn undoes);

  std::optional<InboxRecord> Lookup(const std::string& dedup_key) const;
  const InboxOptions& options() const { return options_; }
  LocalStore& store() { return store_; }

 private:
  LocalStore& store_;
  InboxOptions options_;
};

}  // namespace txmq
