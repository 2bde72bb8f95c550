// At most one retention sweep a minute, whichever thread asks: the SQL
// inboxes and transaction records sweep from their handler and check
// calls. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace txmq::producer {

class SweepThrottle {
 public:
  bool Due() {
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    int64_t last = last_ms_.load();
    return now - last >= 60'000 && last_ms_.compare_exchange_strong(last, now);
  }

 private:
  std::atomic<int64_t> last_ms_{0};
};

}  // namespace txmq::producer
