// Outbox::Impl: the relay's in-memory view of the local message table.
// outbox.cc has the calls users make (Start, Shutdown, Add, Flush, ...);
// outbox_relay.cc has the relay thread.
//
// Thread "txmq-relay" (started by Start) sends pending rows and records
// the outcomes; the producer's I/O thread hands outcomes over through
// outcomes_; committing threads add rows through link_ (a commit may come
// after the Outbox is gone). Shared under mu_: everything marked "guarded
// by mu_". Start and Shutdown run one at a time (lifecycle_mu_); they alone
// create and destroy producer_ and relay_.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>

#include "producer/src/outbox_row.h"
#include "protocol/src/log.h"
#include "txmq/outbox.h"

namespace txmq {

class Outbox::Impl {
 public:
  Impl(LocalStore& store, OutboxOptions options);
  ~Impl();

  Status Start();
  void Shutdown();
  Status Add(LocalTxn& txn, Message message);
  Status Flush(std::chrono::milliseconds timeout);
  Status Requeue(const std::string& id);
  Status Delete(const std::string& id);
  OutboxStats stats() const;

 private:
  struct Pending {
    outbox::StoredRow row;
    bool in_flight;
  };
  struct Parked {
    std::string key;
    std::string id;
  };
  struct Outcome {
    uint64_t seq;
    Status status;
  };
  // Keys held by a parked row: key -> the first parked row of that key.
  using HeldKeys = std::unordered_map<std::string_view, std::pair<uint64_t, std::string_view>>;

  // What a committed Add calls back through: null once the Impl is gone.
  struct Link {
    std::mutex mu;
    Impl* impl = nullptr;  // guarded by mu
  };
  void Committed(uint64_t seq, const outbox::StoredRow& row);

  // --- outbox_relay.cc (relay thread) ---
  void Relay();
  // Sends every row that may go now; returns when the next one is due.
  int64_t SendDue(std::unique_lock<std::mutex>& lock);
  void ApplyOutcomes(std::unique_lock<std::mutex>& lock);
  // Backoff after `failures` failures: doubling from backoff_initial, never
  // above backoff_max, with jitter so many rows do not retry in lockstep.
  int64_t BackoffMs(uint32_t failures);

  // --- parked rows holding their keys (mu_ held) ---
  HeldKeys HeldByParked() const;
  // The parked row that `seq` (of `key`) waits behind, or null.
  static const std::pair<uint64_t, std::string_view>* HeldBy(const HeldKeys& held,
                                                             const std::string& key, uint64_t seq);
  uint64_t CountBlocked() const;

  LocalStore& store_;
  const OutboxOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  const std::shared_ptr<Link> link_;
  std::mutex lifecycle_mu_;
  std::unique_ptr<Producer> producer_;  // guarded by lifecycle_mu_; used by the relay
  std::thread relay_;                   // guarded by lifecycle_mu_
  std::mt19937_64 rng_;                 // the relay thread, or Shutdown once it is gone

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Pending> pending_;  // guarded by mu_, by seq
  std::map<uint64_t, Parked> parked_;    // guarded by mu_, by seq
  std::deque<Outcome> outcomes_;         // guarded by mu_
  int in_flight_ = 0;                    // guarded by mu_
  uint64_t sent_ = 0;                    // guarded by mu_
  std::string last_error_;               // guarded by mu_
  bool running_ = false;                 // guarded by mu_: started, not told to stop
  bool wake_now_ = false;                // guarded by mu_
  uint32_t consecutive_failures_ = 0;    // guarded by mu_
  uint32_t bookkeeping_failures_ = 0;    // guarded by mu_: failed store writes in a row
  int64_t paused_until_ = 0;             // guarded by mu_
};

}  // namespace txmq
