// The relays' retry delay: initial * 2^(failures-1), capped at `max`, with
// jitter (50-100%) so many rows or relays do not retry in lockstep.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>

namespace txmq::producer {

inline int64_t JitteredBackoffMs(std::chrono::milliseconds initial, std::chrono::milliseconds max,
                                 uint32_t failures, std::mt19937_64& rng) {
  const double base =
      static_cast<double>(initial.count()) * std::pow(2.0, std::min<uint32_t>(failures, 40) - 1.0);
  const double capped = std::min(base, static_cast<double>(max.count()));
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return static_cast<int64_t>(capped * jitter(rng));
}

}  // namespace txmq::producer
