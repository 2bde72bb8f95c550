#include "txmq/compensation.h"

#include "consumer/src/inbox_records.h"
#include "producer/src/origin_fence.h"
#include "protocol/src/log.h"
#include "txmq/properties.h"

namespace txmq {

namespace {

// The inbox's dedup key of a compensation: its original.
std::string DedupKey(const Received& m) {
  auto c = CompensationFromMessage(m);
  return "compensation/" + (c.ok() ? c->original_id : m.id);
}

}  // namespace

Result<Compensation> CompensationFromMessage(const Received& m) {
  // Find also reads the "txmq-..." names of compensations sent by txmq 0.1.
  auto get = [&](const char* name) -> std::string {
    const std::string* value = property::Find(m.properties, name);
    return value == nullptr ? std::string() : *value;
  };
  Compensation c;
  c.original_id = get(property::kOriginalId);
  if (c.original_id.empty()) {
    return Status::InvalidArgument("message " + m.id + " is not a compensation (no " +
                                   property::kOriginalId + ")");
  }
  c.original_topic = get(property::kOriginalTopic);
  c.transaction_id = get(property::kTransactionId);
  c.key = m.key;
  c.consumer_group = get(property::kConsumerGroup);
  // The body carries the reason whole; the property only its start.
  c.reason = m.body.empty() ? get(property::kReason) : m.body;
  return c;
}

Status OnCompensation(Consumer& consumer, Inbox& inbox, const std::string& producer_group,
                      CompensationHandler undo, CompensationOptions options) {
  if (!undo) return Status::InvalidArgument("the compensation handler is empty");
  if (options.record_horizon.count() <= 0) {
    return Status::InvalidArgument("compensation options: record_horizon must be positive");
  }
  // One undo per original message, however often (or by however many
  // consumers) it was compensated.
  auto key = [](const Received& m) { return DedupKey(m); };
  auto handler = [&inbox, undo = std::move(undo), options](LocalTxn& txn, const Received& m) {
    auto c = CompensationFromMessage(m);
    if (!c.ok()) {
      // Not ours to understand; acknowledge so it does not loop.
      Logger("inbox")->error("{}; ignored", c.status().message());
      return ConsumeResult::Success();
    }
    if (options.only_recorded) {
      std::string why;
      switch (producer::CheckOrigin(inbox.store(), txn, c->original_id, c->transaction_id,
                                    options.record_horizon, &why)) {
        case producer::Origin::kCommitted:
          break;
        case producer::Origin::kUndecided:
          Logger("inbox")->warn("compensation {} for {}: {}; will retry", m.id, c->original_id,
                                why);
          return ConsumeResult::RetryLater();
        case producer::Origin::kNotCommitted:
          Logger("inbox")->warn("compensation {} for {} from '{}' ({}) not undone: {}", m.id,
                                c->original_id, c->consumer_group, c->reason, why);
          inbox::Write(txn, inbox.options().group, DedupKey(m), InboxState::kSkipped,
                       "not undone: " + why);
          return ConsumeResult::Success();
      }
    }
    return undo(txn, *c);
  };
  return consumer.Subscribe(CompensationTopic(producer_group),
                            inbox.Idempotent(std::move(handler), key));
}

}  // namespace txmq
