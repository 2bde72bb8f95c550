// A fixed-bucket latency histogram, in microseconds: what the store keeps
// of its round write and fsync times (StoreStats), and what /metrics turns
// into Prometheus `_seconds` histograms (broker/src/http/metrics_text.h).
// Fixed bounds keep it a few words of plain values, cheap to copy under
// the store's mutex.
//
// Thread safety: a value type; guard it like any other.
#pragma once

#include <array>
#include <cstdint>

namespace txmq::storage {

// Upper bounds of the buckets in microseconds; the last bucket (+Inf) is
// implied.
inline constexpr std::array<uint64_t, 14> kLatencyBucketsMicros = {
    100,    250,    500,     1'000,   2'500,   5'000,     10'000,
    25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000, 2'500'000};

struct LatencyHistogram {
  // counts[i]: observations at or below kLatencyBucketsMicros[i] and above
  // the bound before it; the last entry: above every bound. Not
  // cumulative (the exposition sums them).
  std::array<uint64_t, kLatencyBucketsMicros.size() + 1> counts{};
  uint64_t sum_micros = 0;

  void Observe(uint64_t micros) {
    size_t i = 0;
    while (i < kLatencyBucketsMicros.size() && micros > kLatencyBucketsMicros[i]) ++i;
    ++counts[i];
    sum_micros += micros;
  }
  uint64_t count() const {
    uint64_t n = 0;
    for (uint64_t c : counts) n += c;
    return n;
  }
};

}  // namespace txmq::storage
