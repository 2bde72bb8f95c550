// The Outbox calls users make. The relay thread is in outbox_relay.cc;
// threads and the data they share are listed in outbox_impl.h.
#include "txmq/outbox.h"

#include <algorithm>

#include "producer/src/library_send.h"
#include "producer/src/outbox_impl.h"
#include "protocol/src/util.h"
#include "storage/src/local_store_impl.h"
#include "txmq/names.h"
#include "txmq/properties.h"

namespace txmq {

namespace {

using outbox::StoredRow;

constexpr size_t kRetentionBatch = 1000;

}  // namespace

Outbox::Impl::Impl(LocalStore& store, OutboxOptions options)
    : store_(store),
      options_(std::move(options)),
      log_(Logger("outbox")),
      link_(std::make_shared<Link>()),
      rng_(std::random_device{}()) {
  link_->impl = this;
  store_.impl().AddRetention(std::string(outbox::kRecordTable),
                             std::max(options_.record_horizon, std::chrono::milliseconds(1)),
                             kRetentionBatch);
}

Outbox::Impl::~Impl() {
  Shutdown();
  // A transaction with an Add may still commit: its row is in the store,
  // for the next Outbox on it.
  std::lock_guard<std::mutex> lock(link_->mu);
  link_->impl = nullptr;
}

Status Outbox::Impl::Start() {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_) return Status::FailedPrecondition("outbox already started");
  }
  if (options_.backoff_initial.count() <= 0 || options_.backoff_max < options_.backoff_initial ||
      options_.max_in_flight < 1 || options_.max_attempts < 0 ||
      options_.record_horizon.count() <= 0) {
    return Status::InvalidArgument(
        "outbox options: backoff_initial must be positive, backoff_max not below it, "
        "max_in_flight at least 1, max_attempts not negative, record_horizon positive");
  }
  auto producer = std::make_unique<Producer>(options_.producer);
  if (Status s = producer->Start(); !s.ok()) return s;
  producer_ = std::move(producer);
  {
    // The store is the truth: whatever committed before (also while no
    // relay ran, or while this one was stopped) is pending there.
    std::lock_guard<std::mutex> lock(mu_);
    pending_.clear();
    outbox::ForEachRow(store_, false, [&](uint64_t seq, StoredRow row) {
      row.next_attempt_ms = 0;  // a restart is a good moment to try again
      pending_.emplace(seq, Pending{std::move(row), false});
    });
    parked_.clear();
    outbox::ForEachRow(store_, true, [&](uint64_t seq, StoredRow row) {
      parked_.emplace(seq, Parked{row.message.key, row.message.id});
    });
    outcomes_.clear();
    in_flight_ = 0;
    consecutive_failures_ = 0;
    bookkeeping_failures_ = 0;
    paused_until_ = 0;
    running_ = true;
    log_->info("outbox of store {}: {} rows pending ({} behind parked rows), {} parked",
               store_.path(), pending_.size(), CountBlocked(), parked_.size());
  }
  relay_ = std::thread([this] {
    SetThreadName("txmq-relay");
    Relay();
  });
  return Status::OK();
}

void Outbox::Impl::Shutdown() {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_) return;
    running_ = false;
  }
  cv_.notify_all();
  relay_.join();
  // Sends in flight complete (UNAVAILABLE when not acknowledged yet); then
  // the last outcomes are recorded here: acknowledged rows are deleted,
  // the others stay pending for the next Start.
  producer_.reset();
  std::unique_lock<std::mutex> lock(mu_);
  ApplyOutcomes(lock);
  for (auto& [seq, p] : pending_) p.in_flight = false;
  in_flight_ = 0;
  log_->info("outbox of store {} stopped: {} rows pending, {} parked", store_.path(),
             pending_.size(), parked_.size());
}

Status Outbox::Impl::Add(LocalTxn& txn, Message message) {
  if (Status s = ValidateSendTopic(message.topic); !s.ok()) return s;
  if (message.id.empty()) message.id = NewUuidV7();
  // Who sent it, so a consumer can address a compensation back.
  message.properties[property::kProducerGroup] = options_.producer.group;
  // The store's memory that it committed this message, checked (and
  // fenced) by compensations: a commit after a fence must fail.
  outbox::PutRecord(txn, message.id, outbox::kCommitted, "");
  txn.impl().Require(outbox::RecordKey(message.id), [store = &store_, id = message.id] {
    auto record = outbox::ReadRecord(*store, id);
    if (!record.ok()) return record.status();  // fenced or not: unknown, so no commit
    if (*record && (*record)->state == outbox::kFenced) {
      return Status::Aborted("message " + id +
                             " was fenced: a compensation for it arrived before it committed (" +
                             (*record)->note + "); nothing was committed");
    }
    return Status::OK();
  });
  StoredRow row{std::move(message), NowMs(), 0, 0, ""};
  auto shared = std::make_shared<const StoredRow>(std::move(row));
  txn.impl().AtCommit(
      [shared](leveldb::WriteBatch& batch, uint64_t seq) {
        batch.Put(outbox::PendingKey(seq), outbox::EncodeRow(*shared));
      },
      [link = link_, shared](uint64_t seq) {
        std::lock_guard<std::mutex> lock(link->mu);
        if (link->impl != nullptr) link->impl->Committed(seq, *shared);
      });
  return Status::OK();
}

void Outbox::Impl::Committed(uint64_t seq, const StoredRow& row) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.emplace(seq, Pending{row, false});
    wake_now_ = true;
  }
  cv_.notify_all();
}

Status Outbox::Impl::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  // Rows behind a parked row cannot go until an operator acts, and none
  // goes while the relay is stopped: waiting would only run into the
  // timeout.
  const bool settled = cv_.wait_for(
      lock, timeout, [this] { return !running_ || pending_.size() == CountBlocked(); });
  if (pending_.empty()) return Status::OK();
  if (!running_) {
    return Status::FailedPrecondition(
        "the outbox relay is not running (not started, or shut down): " +
        std::to_string(pending_.size()) + " rows wait in the store at " + store_.path() +
        " for the next Start");
  }
  if (settled) {
    return Status::FailedPrecondition(
        std::to_string(pending_.size()) + " outbox rows wait behind parked rows of their keys (" +
        std::to_string(parked_.size()) + " parked, e.g. row " + parked_.begin()->second.id +
        "); requeue or delete the parked rows: txmqctl outbox list --db " + store_.path() +
        " --state parked");
  }
  return Status::Timeout(std::to_string(pending_.size()) + " outbox rows still pending" +
                         (last_error_.empty() ? "" : "; last error: " + last_error_));
}

Status Outbox::Impl::Requeue(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto seq = outbox::RequeueRow(store_, id, outbox::kInProcess);
  if (!seq.ok()) return seq.status();
  outbox::ForEachRow(store_, false, [&](uint64_t s, StoredRow row) {
    if (s == *seq) pending_.emplace(s, Pending{std::move(row), false});
  });
  parked_.erase(*seq);
  wake_now_ = true;
  cv_.notify_all();
  return Status::OK();
}

Status Outbox::Impl::Delete(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto seq = outbox::DeleteRow(store_, id, /*parked_only=*/true, outbox::kInProcess);
  if (!seq.ok()) return seq.status();
  parked_.erase(*seq);
  wake_now_ = true;
  cv_.notify_all();
  return Status::OK();
}

OutboxStats Outbox::Impl::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  OutboxStats s;
  s.pending = pending_.size();
  s.parked = parked_.size();
  s.sent = sent_;
  s.blocked = CountBlocked();
  s.last_error = last_error_;
  if (!pending_.empty()) {
    s.oldest_pending_age =
        std::chrono::milliseconds(NowMs() - pending_.begin()->second.row.created_ms);
  }
  return s;
}

Outbox::Impl::HeldKeys Outbox::Impl::HeldByParked() const {
  HeldKeys held;
  if (!options_.hold_key_behind_parked) return held;
  for (const auto& [seq, p] : parked_) {
    if (!p.key.empty()) held.try_emplace(p.key, seq, p.id);  // by seq: the first one stays
  }
  return held;
}

const std::pair<uint64_t, std::string_view>* Outbox::Impl::HeldBy(const HeldKeys& held,
                                                                  const std::string& key,
                                                                  uint64_t seq) {
  if (key.empty()) return nullptr;
  auto it = held.find(key);
  return it != held.end() && it->second.first < seq ? &it->second : nullptr;
}

uint64_t Outbox::Impl::CountBlocked() const {
  if (parked_.empty()) return 0;
  const HeldKeys held = HeldByParked();
  uint64_t blocked = 0;
  for (const auto& [seq, p] : pending_) blocked += HeldBy(held, p.row.message.key, seq) != nullptr;
  return blocked;
}

Outbox::Outbox(LocalStore& store, OutboxOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(options))) {}
Outbox::~Outbox() = default;
Status Outbox::Start() { return impl_->Start(); }
void Outbox::Shutdown() { impl_->Shutdown(); }
Status Outbox::Add(LocalTxn& txn, Message message) {
  if (Status s = property::CheckUserProperties(message.properties); !s.ok()) return s;
  return impl_->Add(txn, std::move(message));
}

Status producer::AddStamped(Outbox& outbox, LocalTxn& txn, Message message) {
  return outbox.impl().Add(txn, std::move(message));
}
Status Outbox::Flush(std::chrono::milliseconds timeout) { return impl_->Flush(timeout); }
Status Outbox::Requeue(const std::string& id) { return impl_->Requeue(id); }
Status Outbox::Delete(const std::string& id) { return impl_->Delete(id); }
OutboxStats Outbox::stats() const { return impl_->stats(); }

}  // namespace txmq
