// Compensation messages: how a producer learns that a consumer's business
// step failed for good, so it can undo its own change.
//
//   txmq::Inbox inbox(*store, {.group = "orders-undo"});
//   txmq::Consumer undo_consumer({.broker = url, .group = "orders-undo"});
//   txmq::OnCompensation(undo_consumer, inbox, "orders",
//       [&](txmq::LocalTxn& tx, const txmq::Compensation& c) {
//         tx.Put("order/" + c.key + "/status", "cancelled: " + c.reason);
//         return txmq::ConsumeResult::Success();
//       });
//   undo_consumer.Start();
//
// The undo runs in a LocalTxn through the inbox, so a compensation
// delivered several times (or sent by several failing consumers for one
// message) undoes once.
//
// The undo runs only for an original this store committed: a message sent
// through an Outbox on the inbox's store, or a transaction of a
// TransactionProducer on it (both leave a record with the business rows).
// A compensation for anything else (a message that never existed, one that
// has not committed yet, another store's) is acknowledged without running
// the undo; Inbox::Lookup("compensation/<original id>") then says
// kSkipped, with why. If the original has not committed, the compensation
// also fences it: its commit fails ABORTED afterwards (a transaction's
// rollback is recorded instead), so it can never take effect with nothing
// left to undo it. Mirror of Inbox::Undo on the consumer side.
//
// Several producer instances, each on its own store: give each its own
// undo consumer group (e.g. "orders-undo-" + store.instance_id()), so
// every instance sees every compensation and undoes its own.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "txmq/consumer.h"
#include "txmq/inbox.h"
#include "txmq/names.h"  // CompensationTopic

namespace txmq {

struct Compensation {
  std::string original_id{};  // the message whose effect failed
  std::string original_topic{};
  std::string transaction_id{};  // its transaction, when it had one
  std::string key{};
  std::string consumer_group{};  // who could not process it
  std::string reason{};
};

using CompensationHandler = std::function<ConsumeResult(LocalTxn&, const Compensation&)>;

struct CompensationOptions {
  // true: run the undo only for originals this store committed (above).
  // false: run it for every compensation; for originals sent without a
  // record on this store (a plain Producer, a TransactionProducer with its
  // own checker), where the handler must tell by itself whether there is
  // anything to undo.
  bool only_recorded = true;
  // How long the producer side keeps its records (OutboxOptions::
  // record_horizon, ProducerOptions::transaction_record_horizon). With no
  // record of an original older than this, the compensation is retried
  // later (and ends in the dead-letter queue for an operator) rather than
  // guessed.
  std::chrono::milliseconds record_horizon = std::chrono::hours(24 * 7);
};

// Subscribes `consumer` (before its Start) to the compensations addressed
// to `producer_group` ("%COMP%<producer group>").
Status OnCompensation(Consumer& consumer, Inbox& inbox, const std::string& producer_group,
                      CompensationHandler undo, CompensationOptions options = {});

// Parses a received compensation message; INVALID_ARGUMENT if it is not one.
Result<Compensation> CompensationFromMessage(const Received& message);

}  // namespace txmq
