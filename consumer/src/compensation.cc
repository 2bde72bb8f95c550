#include "txmq/compensation.h"

#include "protocol/src/log.h"

namespace txmq {

Result<Compensation> CompensationFromMessage(const Received& m) {
  auto get = [&](const char* name) -> std::string {
    auto it = m.properties.find(name);
    return it == m.properties.end() ? std::string() : it->second;
  };
  Compensation c;
  c.original_id = get("txmq-original-id");
  if (c.original_id.empty()) {
    return Status::InvalidArgument("message " + m.id +
                                   " is not a compensation (no txmq-original-id)");
  }
  c.original_topic = get("txmq-original-topic");
  c.transaction_id = get("txmq-tx");
  c.key = m.key;
  c.consumer_group = get("txmq-consumer-group");
  c.reason = get("txmq-reason");
  return c;
}

Status OnCompensation(Consumer& consumer, Inbox& inbox, const std::string& producer_group,
                      CompensationHandler undo) {
  if (!undo) return Status::InvalidArgument("the compensation handler is empty");
  // One undo per original message, however often (or by however many
  // consumers) it was compensated.
  auto key = [](const Received& m) {
    auto c = CompensationFromMessage(m);
    return "compensation/" + (c.ok() ? c->original_id : m.id);
  };
  return consumer.Subscribe(CompensationTopic(producer_group),
                            inbox.Idempotent(
                                [undo = std::move(undo)](LocalTxn& txn, const Received& m) {
                                  auto c = CompensationFromMessage(m);
                                  if (!c.ok()) {
                                    // Not ours to understand; acknowledge so it does not loop.
                                    Logger("inbox")->error("{}; ignored", c.status().message());
                                    return ConsumeResult::Success();
                                  }
                                  return undo(txn, *c);
                                },
                                key));
}

}  // namespace txmq
