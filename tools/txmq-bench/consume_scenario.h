// The consume scenario, as the peers' "consume w=W (ack/msg)": a topic is
// first filled (untimed), then one consumer drains it, acknowledging every
// message on its own, until the broker has confirmed all acks.
#pragma once

#include <cstdint>
#include <string>

#include "tools/txmq-bench/cpu_meter.h"
#include "tools/txmq-bench/report.h"

namespace txmq::bench {

struct ConsumePlan {
  std::string broker;  // endpoint
  // CURVE key files (--curve-key, --server-key); empty: plaintext.
  std::string curve_key;
  std::string server_key;
  std::string topic;
  int window = 256;  // pull batch (and, by default, the in-flight limit)
  int max_in_flight = 256;
  int handler_threads = 1;
  int size = 1024;
  double duration_s = 15.0;
  int64_t count = 50'000;  // messages preloaded and drained
  bool preload = true;     // false: the topic already holds `count` messages
};

// Fills `plan.topic` with exactly `plan.count` messages (untimed).
void Preload(const ConsumePlan& plan);

// Preloads (unless told not to), then runs one timed drain. `meter` (may be
// null) covers the drain only. Throws BenchError on setup failures.
BenchResult RunConsume(const ConsumePlan& plan, CpuMeter* meter);

}  // namespace txmq::bench
