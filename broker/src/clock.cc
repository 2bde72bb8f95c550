#include "broker/src/clock.h"

#include <chrono>
#include <string>
#include <string_view>

#include "storage/src/coding.h"

namespace txmq::broker {

BrokerClock::BrokerClock(const TimeSource& source)
    : source_(source), start_steady_(source.SteadyNow()), start_ms_(source.WallMs()) {}

int64_t BrokerClock::Resume(int64_t persisted_ms) {
  // Re-anchor at this instant, so the time spent recovering still counts.
  const int64_t now = NowMs();
  if (persisted_ms <= now) return 0;
  start_steady_ = source_.SteadyNow();
  start_ms_ = persisted_ms;
  return persisted_ms - now;
}

int64_t BrokerClock::NowMs() const {
  return start_ms_ +
         std::chrono::duration_cast<std::chrono::milliseconds>(source_.SteadyNow() - start_steady_)
             .count();
}

std::string EncodeBrokerTime(int64_t ms) {
  std::string out;
  storage::PutFixed64(&out, static_cast<uint64_t>(ms));
  return out;
}

bool DecodeBrokerTime(std::string_view value, int64_t* ms) {
  uint64_t v;
  if (!storage::GetFixed64(&value, &v) || !value.empty()) return false;
  *ms = static_cast<int64_t>(v);
  return true;
}

}  // namespace txmq::broker
