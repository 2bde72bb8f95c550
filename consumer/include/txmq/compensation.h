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
#pragma once

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

// Subscribes `consumer` (before its Start) to the compensations addressed
// to `producer_group` ("%COMP%<producer group>").
Status OnCompensation(Consumer& consumer, Inbox& inbox, const std::string& producer_group,
                      CompensationHandler undo);

// Parses a received compensation message; INVALID_ARGUMENT if it is not one.
Result<Compensation> CompensationFromMessage(const Received& message);

}  // namespace txmq
