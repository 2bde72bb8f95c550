// Start barrier of a timed run: every worker does its own setup (connect,
// warm-up send), then waits here; the clock starts for all of them at once
// when the last one arrives, so setup never counts as measured time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>

namespace txmq::bench {

using SteadyClock = std::chrono::steady_clock;
using SteadyTime = SteadyClock::time_point;

class StartGate {
 public:
  // `on_open` runs once, on the last arriving thread, right after the start
  // time is taken (e.g. to sample the broker's CPU counters).
  StartGate(int parties, std::function<void()> on_open)
      : parties_(parties), on_open_(std::move(on_open)) {}

  // Blocks until all parties arrived; the common start time, or empty when
  // a party aborted (its setup failed, so there is no run to time).
  std::optional<SteadyTime> ArriveAndWait() {
    std::unique_lock<std::mutex> lock(mu_);
    if (++arrived_ == parties_ && !aborted_) {
      start_ = SteadyClock::now();
      if (on_open_) on_open_();
      open_ = true;
      cv_.notify_all();
    }
    cv_.wait(lock, [this] { return open_ || aborted_; });
    if (aborted_) return std::nullopt;
    return start_;
  }

  // Releases everyone waiting, without a start.
  void Abort() {
    std::lock_guard<std::mutex> lock(mu_);
    if (open_) return;
    aborted_ = true;
    cv_.notify_all();
  }

  // Valid once opened.
  SteadyTime start() const {
    std::lock_guard<std::mutex> lock(mu_);
    return start_;
  }
  bool opened() const {
    std::lock_guard<std::mutex> lock(mu_);
    return open_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  const int parties_;
  std::function<void()> on_open_;
  int arrived_ = 0;
  bool open_ = false;
  bool aborted_ = false;
  SteadyTime start_{};
};

}  // namespace txmq::bench
