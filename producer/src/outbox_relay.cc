// The relay thread ("txmq-relay", started by Outbox::Start): sends pending
// rows in seq order, at most one row of a key at a time, and records what
// the broker answered. See outbox_impl.h for what it shares.
#include <algorithm>
#include <cmath>
#include <set>

#include "producer/src/backoff.h"
#include "producer/src/library_send.h"
#include "producer/src/outbox_impl.h"
#include "protocol/src/util.h"
#include "storage/src/local_store_impl.h"

namespace txmq {

int64_t Outbox::Impl::BackoffMs(uint32_t failures) {
  return producer::JitteredBackoffMs(options_.backoff_initial, options_.backoff_max, failures,
                                     rng_);
}
void Outbox::Impl::Relay() {
  std::unique_lock<std::mutex> lock(mu_);
  while (running_) {
    ApplyOutcomes(lock);
    const int64_t wake_ms = SendDue(lock);
    cv_.wait_for(lock, std::chrono::milliseconds(std::clamp<int64_t>(wake_ms - NowMs(), 1, 1000)),
                 [this] { return !running_ || !outcomes_.empty() || wake_now_; });
    wake_now_ = false;
  }
}

int64_t Outbox::Impl::SendDue(std::unique_lock<std::mutex>& lock) {
  const int64_t now = NowMs();
  int64_t next_due = now + 1000;
  if (now < paused_until_) return paused_until_;  // the broker is away: do not hammer it
  const uint64_t safe = store_.impl().SafeSeq();
  const HeldKeys held = HeldByParked();
  std::set<std::string_view> busy;  // keys with an earlier row still pending
  std::vector<std::pair<uint64_t, Message>> to_send;
  for (auto& [seq, p] : pending_) {
    if (seq > safe) break;  // an earlier commit is still being written
    const std::string& key = p.row.message.key;
    if (!key.empty() && !busy.insert(key).second) continue;  // keeps per-key order
    if (HeldBy(held, key, seq) != nullptr) continue;         // an earlier row is parked
    if (p.in_flight) continue;
    if (p.row.next_attempt_ms > now) {
      next_due = std::min(next_due, p.row.next_attempt_ms);
      continue;
    }
    if (in_flight_ >= options_.max_in_flight) break;
    p.in_flight = true;
    ++in_flight_;
    to_send.emplace_back(seq, p.row.message);
  }
  if (to_send.empty()) return next_due;
  lock.unlock();  // a send may complete inline, and completions take mu_
  for (auto& [seq, message] : to_send) {
    producer::SendStamped(*producer_, std::move(message), [this, seq = seq](Result<SendResult> r) {
      {
        std::lock_guard<std::mutex> guard(mu_);
        outcomes_.push_back({seq, r.status()});
      }
      cv_.notify_all();
    });
  }
  lock.lock();
  return next_due;
}

void Outbox::Impl::ApplyOutcomes(std::unique_lock<std::mutex>& lock) {
  if (outcomes_.empty()) return;
  std::deque<Outcome> outcomes;
  outcomes.swap(outcomes_);
  leveldb::WriteBatch batch;
  const int64_t now = NowMs();
  std::vector<std::pair<uint64_t, Pending>> newly_parked;
  std::vector<uint64_t> acked;  // leave pending_ once `batch` deleted them
  for (const Outcome& o : outcomes) {
    auto it = pending_.find(o.seq);
    if (it == pending_.end()) continue;
    --in_flight_;
    Pending& p = it->second;
    p.in_flight = false;
    if (o.status.ok()) {
      batch.Delete(outbox::PendingKey(o.seq));
      p.in_flight = true;  // not sent again while its deletion is written
      acked.push_back(o.seq);
      consecutive_failures_ = 0;
      paused_until_ = 0;
      continue;
    }
    outbox::StoredRow& row = p.row;
    row.attempts++;
    row.last_error = o.status.ToString();
    last_error_ = row.last_error;
    const bool permanent = !o.status.IsRetryable();
    const bool too_many =
        options_.max_attempts > 0 && row.attempts >= static_cast<uint32_t>(options_.max_attempts);
    const bool too_old =
        options_.max_age.count() > 0 && now - row.created_ms >= options_.max_age.count();
    if (permanent || too_many || too_old) {
      const bool holds = options_.hold_key_behind_parked && !row.message.key.empty();
      log_->error(
          "outbox row {} (topic '{}', key '{}') parked after {} attempts: {}.{} Requeue or delete "
          "it: txmqctl outbox list --db {} --state parked",
          row.message.id, row.message.topic, row.message.key, row.attempts, row.last_error,
          holds ? " Later rows of its key wait behind it." : "", store_.path());
      batch.Delete(outbox::PendingKey(o.seq));
      batch.Put(outbox::ParkedKey(o.seq), outbox::EncodeRow(row));
      newly_parked.emplace_back(o.seq, std::move(p));
      pending_.erase(it);
      continue;
    }
    row.next_attempt_ms = now + BackoffMs(row.attempts);
    batch.Put(outbox::PendingKey(o.seq), outbox::EncodeRow(row));
    // The broker is probably away: pause the whole relay, not just this row.
    paused_until_ = now + BackoffMs(++consecutive_failures_);
    if (consecutive_failures_ == 1 || consecutive_failures_ % 20 == 0) {
      log_->warn("outbox relay: {} ({} failures in a row); retrying in up to {}", row.last_error,
                 consecutive_failures_, FormatDurationMs(options_.backoff_max.count()));
    }
  }
  lock.unlock();
  // Unsynced: losing a deletion to a crash means one resend, which the
  // broker's dedup window stores once and an inbox applies once.
  leveldb::WriteOptions wo;
  leveldb::Status s = store_.impl().db()->Write(wo, &batch);
  lock.lock();
  if (s.ok()) {
    if (bookkeeping_failures_ > 0) {
      log_->info("outbox relay: bookkeeping writes to {} work again (after {} failures)",
                 store_.path(), bookkeeping_failures_);
    }
    bookkeeping_failures_ = 0;
  } else {
    ++bookkeeping_failures_;
  }
  for (uint64_t seq : acked) {
    auto it = pending_.find(seq);
    if (it == pending_.end()) continue;
    if (s.ok()) {
      pending_.erase(it);
      ++sent_;
      continue;
    }
    // The broker has it, but the row is still in the store (a restart would
    // send it again). Send it again later and delete it then: the broker's
    // dedup window stores the id once. Flush waits for that.
    it->second.in_flight = false;
    it->second.row.next_attempt_ms = now + BackoffMs(bookkeeping_failures_);
  }
  for (auto& [seq, p] : newly_parked) {
    if (s.ok()) {
      parked_.emplace(seq, Parked{p.row.message.key, p.row.message.id});
    } else {
      // Still pending in the store: keep trying it, later.
      p.row.next_attempt_ms = now + BackoffMs(p.row.attempts);
      pending_.emplace(seq, std::move(p));
    }
  }
  if (!s.ok()) {
    last_error_ = "outbox bookkeeping write to the local store failed: " + s.ToString();
    if (bookkeeping_failures_ == 1 || bookkeeping_failures_ % 20 == 0) {
      log_->error(
          "outbox relay: writing what the broker answered to the local store {} failed ({} in a "
          "row): {}. Nothing is lost: {} acknowledged rows stay pending and are sent again "
          "(the broker stores each id once), failed ones keep their place",
          store_.path(), bookkeeping_failures_, s.ToString(), acked.size());
    }
  }
  cv_.notify_all();  // Flush waits for pending_ to drain
}

}  // namespace txmq
