#include "txmq/inbox.h"

#include <optional>

#include "consumer/src/compensation_message.h"
#include "consumer/src/inbox_records.h"
#include "producer/src/library_send.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "txmq/compensation.h"
#include "txmq/properties.h"

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

// How often a handler runs for one delivery when its commit is ABORTED
// because a key it read was changed by a concurrent commit. Each abort
// means another commit went through, so a few runs nearly always do; past
// this the message goes back to the broker and comes again later.
constexpr int kMaxRuns = 16;

// One run of a handler: a result decided without a commit (nothing to do,
// a transient failure), or the status of the commit it made.
struct Run {
  std::optional<ConsumeResult> decided;
  Status commit;
};

// Runs `once` again while its commit is ABORTED (at most kMaxRuns times);
// any other failure is a retry later (the message comes back).
ConsumeResult UntilCommitted(const Received& m, const std::function<Run()>& once) {
  for (int run = 1;; ++run) {
    Run r = once();
    if (r.decided) return *r.decided;
    if (r.commit.ok()) return ConsumeResult::Success();
    if (r.commit.code() == StatusCode::kAborted && run < kMaxRuns) continue;
    Logger("inbox")->error("commit for message {} of '{}' failed (run {}): {}; will retry", m.id,
                           m.topic, run, r.commit.ToString());
    return ConsumeResult::RetryLater();
  }
}

// The message's record could not be read: whether it was processed is
// unknown, so it is given back (running the handler could repeat it).
ConsumeResult Unreadable(const Received& m, const Status& why) {
  Logger("inbox")->error("message {} of '{}': its inbox record cannot be read ({}); retried later",
                         m.id, m.topic, why.ToString());
  return ConsumeResult::RetryLater();
}

Run Decided(ConsumeResult result) { return {std::move(result), Status::OK()}; }
Run Committed(LocalTxn& txn) { return {std::nullopt, txn.Commit()}; }

// A business failure: none of the handler's writes; the failure recorded
// and the compensation added to the inbox's outbox, in one commit that
// also depends on what the handler read (the decision must still hold).
Run Compensated(LocalStore& store, const InboxOptions& options, LocalTxn& txn, const Received& m,
                const std::string& key, const std::string& reason) {
  txn.Abort();
  if (options.outbox == nullptr) {
    Logger("inbox")->error(
        "handler asked to compensate message {} ({}) but the inbox has no outbox to send it; "
        "will retry",
        m.id, reason);
    return Decided(ConsumeResult::RetryLater());
  }
  auto compensation = consumer::MakeCompensation(m, options.group, reason);
  if (!compensation.ok()) {
    Logger("inbox")->error("{}; will retry", compensation.status().message());
    return Decided(ConsumeResult::RetryLater());
  }
  LocalTxn failed = store.Begin();
  failed.impl().AdoptReads(txn.impl());
  inbox::Write(failed, options.group, key, InboxState::kCompensated, reason);
  if (Status s = producer::AddStamped(*options.outbox, failed, std::move(compensation.value()));
      !s.ok()) {
    Logger("inbox")->error("compensation for {} not added: {}; will retry", m.id, s.ToString());
    return Decided(ConsumeResult::RetryLater());
  }
  Run run = Committed(failed);
  if (run.commit.ok()) {
    Logger("inbox")->info("message {} of '{}' failed in group '{}' ({}); compensation sent", m.id,
                          m.topic, options.group, reason);
  }
  return run;
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
  auto record = inbox::Read(store_, inbox::RecordKey(options_.group, dedup_key));
  if (!record.ok()) {
    Logger("inbox")->warn("looking up {} in group '{}': {}", dedup_key, options_.group,
                          record.status().ToString());
    return std::nullopt;
  }
  return *record;
}

Handler Inbox::Idempotent(TxnHandler handler, DedupKeyFn dedup_key) {
  return [this, handler = std::move(handler),
          dedup_key = std::move(dedup_key)](const Received& m) -> ConsumeResult {
    const std::string key = dedup_key ? dedup_key(m) : m.id;
    const std::string record_key = inbox::RecordKey(options_.group, key);
    // Copies delivered at the same time wait here; the second then finds
    // the first one's record.
    auto guard = store_.impl().LockKey(record_key);
    auto read = inbox::Read(store_, record_key);
    if (!read.ok()) return Unreadable(m, read.status());
    if (const auto& existing = *read) {
      if (existing->state != InboxState::kFenced) return ConsumeResult::Success();
      // Its undo came first: the message must not take effect now.
      LocalTxn txn = store_.Begin();
      inbox::Write(txn, options_.group, key, InboxState::kSkipped,
                   "arrived after its undo (" + existing->note + "); not applied");
      Logger("inbox")->info("message {} of '{}' arrived after its undo; acknowledged, not applied",
                            m.id, m.topic);
      return UntilCommitted(m, [&] { return Committed(txn); });
    }
    return UntilCommitted(m, [&]() -> Run {
      LocalTxn txn = store_.Begin();
      // Before the handler runs, so a handler of txmq's own may replace it
      // (OnCompensation records a compensation it did not undo as skipped).
      inbox::Write(txn, options_.group, key, InboxState::kProcessed, "");
      ConsumeResult result = RunHandler(handler, txn, m);
      switch (result.kind()) {
        case ConsumeResult::Kind::kRetryLater:
          return Decided(result);  // transient: the writes are dropped, no compensation
        case ConsumeResult::Kind::kSuccess:
          return Committed(txn);
        case ConsumeResult::Kind::kCompensate:
          return Compensated(store_, options_, txn, m, key, result.reason());
      }
      return Decided(ConsumeResult::RetryLater());
    });
  };
}

Handler Inbox::Undo(TxnHandler handler, DedupKeyFn undoes) {
  return [this, handler = std::move(handler),
          undoes = std::move(undoes)](const Received& m) -> ConsumeResult {
    const std::string target = undoes(m);
    const std::string record_key = inbox::RecordKey(options_.group, target);
    auto guard = store_.impl().LockKey(record_key);
    auto read = inbox::Read(store_, record_key);
    if (!read.ok()) return Unreadable(m, read.status());
    const auto& existing = *read;
    if (!existing) {
      // Nothing to undo yet: fence the original so it never takes effect.
      LocalTxn txn = store_.Begin();
      inbox::Write(txn, options_.group, target, InboxState::kFenced, "undo " + m.id);
      Logger("inbox")->info("undo {} arrived before message {}; fenced it", m.id, target);
      return UntilCommitted(m, [&] { return Committed(txn); });
    }
    if (existing->state != InboxState::kProcessed)
      return ConsumeResult::Success();  // nothing to do
    return UntilCommitted(m, [&]() -> Run {
      LocalTxn txn = store_.Begin();
      ConsumeResult result = RunHandler(handler, txn, m);
      if (result.kind() == ConsumeResult::Kind::kCompensate) {
        Logger("inbox")->error("an undo cannot be compensated (message {}): will retry", m.id);
        return Decided(ConsumeResult::RetryLater());
      }
      if (result.kind() != ConsumeResult::Kind::kSuccess) return Decided(result);
      inbox::Write(txn, options_.group, target, InboxState::kUndone, "undone by " + m.id);
      return Committed(txn);
    });
  };
}

}  // namespace txmq
