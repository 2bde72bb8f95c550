// Thread "txmq-relay" (Outbox::Start) sends pending rows and records the
// outcomes; the producer's I/O thread hands outcomes over through
// results_. Shared under mu_: pending_, results_, in_flight_, counters,
// stopping_.
#include "txmq/outbox.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "producer/src/outbox_row.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "storage/src/local_store_impl.h"
#include "txmq/names.h"

namespace txmq {

namespace {

using outbox::StoredRow;

constexpr size_t kRetentionBatch = 1000;

}  // namespace

class Outbox::Impl {
 public:
  Impl(LocalStore& store, OutboxOptions options)
      : store_(store),
        options_(std::move(options)),
        log_(Logger("outbox")),
        rng_(std::random_device{}()) {
    store_.impl().AddRetention(std::string(outbox::kRecordTable),
                               std::max(options_.record_horizon, std::chrono::milliseconds(1)),
                               kRetentionBatch);
  }

  ~Impl() { Shutdown(); }

  Status Start() {
    if (options_.backoff_initial.count() <= 0 || options_.backoff_max < options_.backoff_initial ||
        options_.max_in_flight < 1 || options_.max_attempts < 0 ||
        options_.record_horizon.count() <= 0) {
      return Status::InvalidArgument(
          "outbox options: backoff_initial must be positive, backoff_max not below it, "
          "max_in_flight at least 1, max_attempts not negative, record_horizon positive");
    }
    producer_ = std::make_unique<Producer>(options_.producer);
    if (Status s = producer_->Start(); !s.ok()) return s;
    {
      std::lock_guard<std::mutex> lock(mu_);
      outbox::ForEachRow(store_, false, [&](uint64_t seq, StoredRow row) {
        row.next_attempt_ms = 0;  // a restart is a good moment to try again
        pending_.emplace(seq, Pending{std::move(row), false});
      });
      parked_ = 0;
      outbox::ForEachRow(store_, true, [&](uint64_t, const StoredRow&) { ++parked_; });
      stopping_ = false;
    }
    log_->info("outbox of store {}: {} rows pending, {} parked", store_.path(), pending_.size(),
               parked_);
    relay_ = std::thread([this] {
      SetThreadName("txmq-relay");
      Relay();
    });
    return Status::OK();
  }

  void Shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || !relay_.joinable()) return;
      stopping_ = true;
    }
    cv_.notify_all();
    relay_.join();
    producer_.reset();  // sends in flight complete (unacknowledged: they stay pending)
  }

  Status Add(LocalTxn& txn, Message message) {
    if (Status s = ValidateSendTopic(message.topic); !s.ok()) return s;
    if (message.id.empty()) message.id = NewUuidV7();
    // Who sent it, so a consumer can address a compensation back.
    message.properties["txmq-producer-group"] = options_.producer.group;
    // The store's memory that it committed this message, checked (and
    // fenced) by compensations: a commit after a fence must fail.
    outbox::PutRecord(txn, message.id, outbox::kCommitted, "");
    txn.impl().Require(outbox::RecordKey(message.id), [store = &store_, id = message.id] {
      auto record = outbox::ReadRecord(*store, id);
      if (record && record->state == outbox::kFenced) {
        return Status::Aborted("message " + id +
                               " was fenced: a compensation for it arrived before it committed (" +
                               record->note + "); nothing was committed");
      }
      return Status::OK();
    });
    StoredRow row{std::move(message), NowMs(), 0, 0, ""};
    auto shared = std::make_shared<const StoredRow>(std::move(row));
    txn.impl().AtCommit([shared](leveldb::WriteBatch& batch, uint64_t seq) {
      batch.Put(outbox::PendingKey(seq), outbox::EncodeRow(*shared));
    });
    txn.impl().OnCommitted([this, shared](uint64_t seq) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        pending_.emplace(seq, Pending{*shared, false});
        wake_now_ = true;
      }
      cv_.notify_all();
    });
    return Status::OK();
  }

  Status Flush(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, timeout, [this] { return pending_.empty(); })) return Status::OK();
    return Status::Timeout(std::to_string(pending_.size()) + " outbox rows still pending" +
                           (last_error_.empty() ? "" : "; last error: " + last_error_));
  }

  Status Requeue(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    if (Status s = Outbox::Requeue(store_, id); !s.ok()) return s;
    outbox::ForEachRow(store_, false, [&](uint64_t seq, StoredRow row) {
      if (row.message.id == id && !pending_.count(seq))
        pending_.emplace(seq, Pending{std::move(row), false});
    });
    --parked_;
    wake_now_ = true;
    cv_.notify_all();
    return Status::OK();
  }

  OutboxStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    OutboxStats s;
    s.pending = pending_.size();
    s.parked = parked_;
    s.sent = sent_;
    s.last_error = last_error_;
    if (!pending_.empty()) {
      s.oldest_pending_age =
          std::chrono::milliseconds(NowMs() - pending_.begin()->second.row.created_ms);
    }
    return s;
  }

 private:
  struct Pending {
    StoredRow row;
    bool in_flight;
  };
  struct Outcome {
    uint64_t seq;
    Status status;
  };

  // Backoff after `failures` failures: doubling from backoff_initial, never
  // above backoff_max, with jitter so many rows do not retry in lockstep.
  int64_t BackoffMs(uint32_t failures) {
    const double base = static_cast<double>(options_.backoff_initial.count()) *
                        std::pow(2.0, std::min<uint32_t>(failures, 40) - 1.0);
    const double capped = std::min(base, static_cast<double>(options_.backoff_max.count()));
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    return static_cast<int64_t>(capped * jitter(rng_));
  }

  void Relay() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      ApplyOutcomes(lock);
      const int64_t wake_ms = SendDue(lock);
      cv_.wait_for(lock, std::chrono::milliseconds(std::clamp<int64_t>(wake_ms - NowMs(), 1, 1000)),
                   [this] { return stopping_ || !outcomes_.empty() || wake_now_; });
      wake_now_ = false;
    }
  }

  // Sends every row that may go now; returns when the next one is due.
  int64_t SendDue(std::unique_lock<std::mutex>& lock) {
    const int64_t now = NowMs();
    int64_t next_due = now + 1000;
    if (now < paused_until_) return paused_until_;  // the broker is away: do not hammer it
    const uint64_t safe = store_.impl().SafeSeq();
    std::set<std::string_view> blocked;  // keys with an earlier row still pending
    std::vector<std::pair<uint64_t, Message>> to_send;
    for (auto& [seq, p] : pending_) {
      if (seq > safe) break;  // an earlier commit is still being written
      const std::string& key = p.row.message.key;
      if (!key.empty() && !blocked.insert(key).second) continue;  // keeps per-key order
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
      producer_->SendAsync(std::move(message), [this, seq = seq](Result<SendResult> r) {
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

  void ApplyOutcomes(std::unique_lock<std::mutex>& lock) {
    if (outcomes_.empty()) return;
    std::deque<Outcome> outcomes;
    outcomes.swap(outcomes_);
    leveldb::WriteBatch batch;
    const int64_t now = NowMs();
    uint64_t newly_parked = 0;
    for (const Outcome& o : outcomes) {
      auto it = pending_.find(o.seq);
      if (it == pending_.end()) continue;
      --in_flight_;
      Pending& p = it->second;
      p.in_flight = false;
      if (o.status.ok()) {
        batch.Delete(outbox::PendingKey(o.seq));
        pending_.erase(it);
        ++sent_;
        consecutive_failures_ = 0;
        paused_until_ = 0;
        continue;
      }
      StoredRow& row = p.row;
      row.attempts++;
      row.last_error = o.status.ToString();
      last_error_ = row.last_error;
      const bool permanent = !o.status.IsRetryable();
      const bool too_many =
          options_.max_attempts > 0 && row.attempts >= static_cast<uint32_t>(options_.max_attempts);
      const bool too_old =
          options_.max_age.count() > 0 && now - row.created_ms >= options_.max_age.count();
      if (permanent || too_many || too_old) {
        log_->error(
            "outbox row {} (topic '{}', key '{}') parked after {} attempts: {}. Requeue "
            "or delete it: txmqctl outbox list --db {} --state parked",
            row.message.id, row.message.topic, row.message.key, row.attempts, row.last_error,
            store_.path());
        batch.Delete(outbox::PendingKey(o.seq));
        batch.Put(outbox::ParkedKey(o.seq), outbox::EncodeRow(row));
        pending_.erase(it);
        ++newly_parked;
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
    if (!s.ok()) {
      log_->error("outbox bookkeeping write failed: {}", s.ToString());
    } else {
      parked_ += newly_parked;  // counted once the parked rows are in the store
    }
    cv_.notify_all();  // Flush waits for pending_ to drain
  }

  LocalStore& store_;
  const OutboxOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<Producer> producer_;
  std::thread relay_;
  std::mt19937_64 rng_;  // relay thread only

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Pending> pending_;  // guarded by mu_
  std::deque<Outcome> outcomes_;         // guarded by mu_
  int in_flight_ = 0;                    // guarded by mu_
  uint64_t parked_ = 0;                  // guarded by mu_
  uint64_t sent_ = 0;                    // guarded by mu_
  std::string last_error_;               // guarded by mu_
  bool stopping_ = true;                 // guarded by mu_
  bool wake_now_ = false;                // guarded by mu_
  uint32_t consecutive_failures_ = 0;    // guarded by mu_
  int64_t paused_until_ = 0;             // guarded by mu_
};

Outbox::Outbox(LocalStore& store, OutboxOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(options))) {}
Outbox::~Outbox() = default;
Status Outbox::Start() { return impl_->Start(); }
void Outbox::Shutdown() { impl_->Shutdown(); }
Status Outbox::Add(LocalTxn& txn, Message message) { return impl_->Add(txn, std::move(message)); }
Status Outbox::Flush(std::chrono::milliseconds timeout) { return impl_->Flush(timeout); }
Status Outbox::Requeue(const std::string& id) { return impl_->Requeue(id); }
OutboxStats Outbox::stats() const { return impl_->stats(); }

}  // namespace txmq
