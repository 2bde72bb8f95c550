// Broker time: the one clock behind every schedule and stored timestamp of
// the broker (redelivery and delayed-message due times, transaction checks,
// born/stored/resolved times, dedup buckets, retention cutoffs, expiry of
// resolved transactions). Pure in-process timeouts (leases, long polls,
// check answers, client silence) use the steady clock directly.
//
// The wall clock is read once, when the broker starts; from then on broker
// time advances with the monotonic clock:
//
//   broker time = max(wall clock at start, broker time persisted last run)
//                 + steady time elapsed since start
//
// So a step of the wall clock while the broker runs (an NTP step, `date -s`,
// a resumed VM) changes nothing: retries and checks stay on time, no backlog
// ages past --retention at once, no dedup entry expires early. NTP's gradual
// corrections (slewing) apply to the monotonic clock as well, so broker time
// keeps the wall clock's pace. The core writes broker time into every commit
// round (Core::TakeRound, key 'm' "broker-time"), so it never goes backward
// across restarts either.
//
// A step while the broker is down: forward looks like that much downtime
// (due retries and checks run at once, retention and the dedup window count
// it as elapsed); backward is ignored: broker time continues from the last
// value it wrote and stays ahead of the wall clock by that much.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/src/util.h"

namespace txmq::broker {

// The machine's clocks, behind an interface so tests can step them.
// Thread safety: implementations must be safe to call from any thread.
class TimeSource {
 public:
  virtual ~TimeSource() = default;
  // Wall clock, milliseconds since the Unix epoch.
  virtual int64_t WallMs() const = 0;
  // A clock that never steps.
  virtual SteadyTime SteadyNow() const = 0;
};

// The real clocks (std::chrono::system_clock and steady_clock).
class SystemTimeSource final : public TimeSource {
 public:
  int64_t WallMs() const override { return txmq::NowMs(); }
  SteadyTime SteadyNow() const override { return SteadyClock::now(); }
};

// Thread safety: Resume before the broker serves (start-up thread); after
// that only const calls, safe from any thread.
class BrokerClock {
 public:
  // Starts at the source's wall clock. `source` must outlive the clock.
  explicit BrokerClock(const TimeSource& source);
  BrokerClock(const BrokerClock&) = delete;
  BrokerClock& operator=(const BrokerClock&) = delete;

  // Continues from `persisted_ms` (broker time written by an earlier run)
  // when the wall clock is behind it. Returns how far behind it was (0 when
  // it was not), for the log.
  int64_t Resume(int64_t persisted_ms);

  // Broker time in milliseconds since the Unix epoch; never goes backward.
  int64_t NowMs() const;

 private:
  const TimeSource& source_;
  SteadyTime start_steady_;
  int64_t start_ms_;
};

// The stored form of broker time: fixed64 milliseconds.
std::string EncodeBrokerTime(int64_t ms);
bool DecodeBrokerTime(std::string_view value, int64_t* ms);

}  // namespace txmq::broker
