#include "txmq/inbox.h"

#include "consumer/src/inbox_records.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "txmq/compensation.h"

namespace txmq {

namespace {

constexpr size_t kRetentionBatch = 1000;

// Runs a user handler; an exception is a transient failure.
ConsumeResult RunHandler(const TxnHandler& handler, LocalTxn& txn, const Received& m) {
  try {
    return handler(txn, m);
  } catch (const std::exception& e) {
    Logger("inbox")->warn("handler threw on message {} of '{}': {}; will retry", m.id, m.topic,
                          e.what());
  } catch (...) {
    Logger("inbox")->warn("handler threw on message {} of '{}'; will retry", m.id, m.topic);
  }
  return ConsumeResult::RetryLater();
}

// Commits, turning a failure into a retry (the message comes back).
ConsumeResult CommitOrRetry(LocalTxn& txn, const Received& m) {
  if (Status s = txn.Commit(); !s.ok()) {
    Logger("inbox")->error("commit for message {} of '{}' failed: {}; will retry", m.id, m.topic,
                           s.ToString());
    return ConsumeResult::RetryLater();
  }
  return ConsumeResult::Success();
}

// The compensation for `m`, which failed in `group` for `reason`.
Result<Message> MakeCompensation(const Received& m, const std::string& group,
                                 const std::string& reason) {
  std::string topic;
  if (auto to = m.properties.find("txmq-compensate-to"); to != m.properties.end()) {
    topic = to->second;
  } else if (auto from = m.properties.find("txmq-producer-group"); from != m.properties.end()) {
    topic = CompensationTopic(from->second);
  } else {
    return Status::FailedPrecondition(
        "message " + m.id +
        " names no producer group (property txmq-producer-group) and no "
        "compensation topic (txmq-compensate-to): the compensation cannot be addressed");
  }
  Message c;
  c.topic = topic;
  c.key = m.key;
  c.body = reason;
  c.properties = {{"txmq-original-id", m.id},
                  {"txmq-original-topic", m.topic},
                  {"txmq-consumer-group", group},
                  {"txmq-reason", reason}};
  if (auto tx = m.properties.find("txmq-tx"); tx != m.properties.end()) {
    c.properties["txmq-tx"] = tx->second;
  }
  return c;
}

}  // namespace

const char* InboxStateName(InboxState state) {
  switch (state) {
    case InboxState::kProcessed:
      return "processed";
    case InboxState::kCompensated:
      return "compensated";
    case InboxState::kUndone:
      return "undone";
    case InboxState::kFenced:
      return "fenced";
    case InboxState::kSkipped:
      return "skipped";
  }
  return "?";
}

Inbox::Inbox(LocalStore& store, InboxOptions options)
    : store_(store), options_(std::move(options)) {
  store_.impl().AddRetention("i/", options_.horizon, kRetentionBatch);
}

std::optional<InboxRecord> Inbox::Lookup(const std::string& dedup_key) const {
  return inbox::Read(store_, inbox::RecordKey(options_.group, dedup_key));
}

Handler Inbox::Idempotent(TxnHandler handler, DedupKeyFn dedup_key) {
  return [this, handler = std::move(handler),
          dedup_key = std::move(dedup_key)](const Received& m) -> ConsumeResult {
    const std::string key = dedup_key ? dedup_key(m) : m.id;
    const std::string record_key = inbox::RecordKey(options_.group, key);
    // Copies delivered at the same time wait here; the second then finds
    // the first one's record.
    auto guard = store_.impl().LockKey(record_key);
    if (auto existing = inbox::Read(store_, record_key)) {
      if (existing->state != InboxState::kFenced) return ConsumeResult::Success();
      // Its undo came first: the message must not take effect now.
      LocalTxn txn = store_.Begin();
      inbox::Write(txn, options_.group, key, InboxState::kSkipped,
                   "arrived after its undo (" + existing->note + "); not applied");
      Logger("inbox")->info("message {} of '{}' arrived after its undo; acknowledged, not applied",
                            m.id, m.topic);
      return CommitOrRetry(txn, m);
    }
    LocalTxn txn = store_.Begin();
    ConsumeResult result = RunHandler(handler, txn, m);
    switch (result.kind()) {
      case ConsumeResult::Kind::kRetryLater:
        return result;  // transient: the writes are dropped, no compensation
      case ConsumeResult::Kind::kSuccess:
        inbox::Write(txn, options_.group, key, InboxState::kProcessed, "");
        return CommitOrRetry(txn, m);
      case ConsumeResult::Kind::kCompensate: {
        txn.Abort();  // a business failure: none of the handler's writes
        if (options_.outbox == nullptr) {
          Logger("inbox")->error(
              "handler asked to compensate message {} ({}) but the inbox has "
              "no outbox to send it; will retry",
              m.id, result.reason());
          return ConsumeResult::RetryLater();
        }
        auto compensation = MakeCompensation(m, options_.group, result.reason());
        if (!compensation.ok()) {
          Logger("inbox")->error("{}; will retry", compensation.status().message());
          return ConsumeResult::RetryLater();
        }
        LocalTxn failed = store_.Begin();
        inbox::Write(failed, options_.group, key, InboxState::kCompensated, result.reason());
        if (Status s = options_.outbox->Add(failed, std::move(compensation.value())); !s.ok()) {
          Logger("inbox")->error("compensation for {} not added: {}; will retry", m.id,
                                 s.ToString());
          return ConsumeResult::RetryLater();
        }
        Logger("inbox")->info("message {} of '{}' failed in group '{}' ({}); compensation sent",
                              m.id, m.topic, options_.group, result.reason());
        return CommitOrRetry(failed, m);
      }
    }
    return ConsumeResult::RetryLater();
  };
}

Handler Inbox::Undo(TxnHandler handler, DedupKeyFn undoes) {
  return [this, handler = std::move(handler),
          undoes = std::move(undoes)](const Received& m) -> ConsumeResult {
    const std::string target = undoes(m);
    const std::string record_key = inbox::RecordKey(options_.group, target);
    auto guard = store_.impl().LockKey(record_key);
    auto existing = inbox::Read(store_, record_key);
    LocalTxn txn = store_.Begin();
    if (!existing) {
      // Nothing to undo yet: fence the original so it never takes effect.
      inbox::Write(txn, options_.group, target, InboxState::kFenced, "undo " + m.id);
      Logger("inbox")->info("undo {} arrived before message {}; fenced it", m.id, target);
      return CommitOrRetry(txn, m);
    }
    if (existing->state != InboxState::kProcessed)
      return ConsumeResult::Success();  // nothing to do
    ConsumeResult result = RunHandler(handler, txn, m);
    if (result.kind() != ConsumeResult::Kind::kSuccess) {
      if (result.kind() == ConsumeResult::Kind::kCompensate) {
        Logger("inbox")->error("an undo cannot be compensated (message {}): will retry", m.id);
        return ConsumeResult::RetryLater();
      }
      return result;
    }
    inbox::Write(txn, options_.group, target, InboxState::kUndone, "undone by " + m.id);
    return CommitOrRetry(txn, m);
  };
}

}  // namespace txmq
