// At most one retention sweep a minute, whichever thread asks: the SQL
// inboxes and transaction records sweep from their handler and check
// calls; a sweep that left expired rows behind (its time ran out) asks for
// the next one a second later (Soon). Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>

#include "txmq/status.h"

namespace txmq::producer {

class SweepThrottle {
 public:
  bool Due() {
    const int64_t now = NowMs();
    int64_t last = last_ms_.load();
    return now - last >= kEveryMs && last_ms_.compare_exchange_strong(last, now);
  }
  // The next sweep is due a second from now.
  void Soon() { last_ms_ = NowMs() - kEveryMs + 1'000; }
  // Runs `sweep` (Result<int64_t>(bool* more)) when one is due; one that
  // left expired rows behind makes the next one due soon. Its error, or OK.
  template <typename Sweep>
  Status RunIfDue(const Sweep& sweep) {
    if (!Due()) return Status::OK();
    bool more = false;
    auto n = sweep(&more);
    if (!n.ok()) return n.status();
    if (more) Soon();
    return Status::OK();
  }

 private:
  static constexpr int64_t kEveryMs = 60'000;
  static int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  // Never swept: the first one is due at once (the steady clock may have
  // started less than a minute ago).
  std::atomic<int64_t> last_ms_{std::numeric_limits<int64_t>::min() / 2};
};

// A sweep deletes in batches of this many rows, one statement each (a
// short lock, a small transaction), for up to kSweepTimeBudget.
inline constexpr int kSweepBatchRows = 1000;
inline constexpr std::chrono::milliseconds kSweepTimeBudget{100};

// Runs `batch` (Result<int64_t>(): one statement deleting at most
// kSweepBatchRows rows; how many) until one deletes fewer or
// kSweepTimeBudget is spent (then *more is set, when given); how many rows
// went in all.
template <typename Batch>
Result<int64_t> DeleteInBatches(const Batch& batch, bool* more) {
  const auto until = std::chrono::steady_clock::now() + kSweepTimeBudget;
  int64_t total = 0;
  if (more != nullptr) *more = false;
  while (true) {
    auto n = batch();
    if (!n.ok()) return n.status();
    total += *n;
    if (*n < kSweepBatchRows) return total;
    if (std::chrono::steady_clock::now() >= until) {
      if (more != nullptr) *more = true;
      return total;
    }
  }
}

// Runs `sweep` (as in RunIfDue) until it leaves nothing behind: a caller
// that asked for a sweep now. How many rows went.
template <typename Sweep>
Result<int64_t> SweepAll(const Sweep& sweep) {
  int64_t total = 0;
  for (bool more = true; more;) {
    auto n = sweep(&more);
    if (!n.ok()) return n.status();
    total += *n;
  }
  return total;
}

}  // namespace txmq::producer
