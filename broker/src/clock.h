// Where the broker's time comes from: one TimeSource (the machine's wall
// and monotonic clocks) handed to the Core when it is built. The real one
// (SystemTimeSource) serves txmqd and txmq::Broker; unit tests hand in a
// ManualTimeSource and move time themselves, so leases, retries, delays and
// transaction checks are tested at exact instants without sockets or sleeps.
// No code under broker/src reads std::chrono clocks directly; everything
// asks the Core (Core::NowMs, Core::SteadyNow).
//
// Two kinds of time come out of it:
//
// Broker time (BrokerClock::NowMs): the one clock behind every schedule and
// stored timestamp of the broker (redelivery and delayed-message due times,
// transaction checks, born/stored/resolved times, dedup buckets, retention
// cutoffs, expiry of resolved transactions).
//
// Steady time (BrokerClock::SteadyNow, the source's monotonic clock): pure
// in-process timeouts (leases, long polls, check answers, the check rate
// limit, client silence, the core loop's wake-ups).
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
// round (Core::StampBrokerTime, meta "broker-time"), so it never goes backward
// across restarts either.
//
// A step while the broker is down: forward looks like that much downtime
// (due retries and checks run at once, retention and the dedup window count
// it as elapsed); backward is ignored: broker time continues from the last
// value it wrote and stays ahead of the wall clock by that much.
#pragma once

#include <atomic>
#include <chrono>
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

// A machine whose clocks move only when told to: for tests. Starts at
// `wall_ms` and an arbitrary steady instant.
// Thread safety: every method may be called from any thread.
class ManualTimeSource final : public TimeSource {
 public:
  explicit ManualTimeSource(int64_t wall_ms = 1'700'000'000'000) : wall_ms_(wall_ms) {}

  int64_t WallMs() const override { return wall_ms_.load(); }
  SteadyTime SteadyNow() const override {
    return SteadyTime(SteadyClock::duration(steady_ns_.load()));
  }

  // Time passes: both clocks move by `d` (not negative).
  void Advance(std::chrono::milliseconds d) {
    wall_ms_ += d.count();
    steady_ns_ += std::chrono::duration_cast<SteadyClock::duration>(d).count();
  }
  // Someone sets the wall clock (NTP step, date -s): only it moves.
  void StepWall(std::chrono::milliseconds d) { wall_ms_ += d.count(); }

 private:
  std::atomic<int64_t> wall_ms_;
  // 1000 hours after the steady clock's epoch, as a machine that has run a while.
  std::atomic<int64_t> steady_ns_{
      std::chrono::duration_cast<SteadyClock::duration>(std::chrono::hours(1000)).count()};
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
  // The source's monotonic clock, for in-process timeouts.
  SteadyTime SteadyNow() const { return source_.SteadyNow(); }

 private:
  const TimeSource& source_;
  SteadyTime start_steady_;
  int64_t start_ms_;
};

// The stored form of broker time: fixed64 milliseconds.
std::string EncodeBrokerTime(int64_t ms);
bool DecodeBrokerTime(std::string_view value, int64_t* ms);

}  // namespace txmq::broker
