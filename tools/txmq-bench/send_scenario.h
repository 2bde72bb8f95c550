// The send scenario, as the peers' "produce p=P w=W": P producers, each its
// own txmq::Producer (connection) on its own thread, each keeping at most W
// sends unacknowledged, all started at once after an untimed setup.
#pragma once

#include <cstdint>
#include <string>

#include "tools/txmq-bench/cpu_meter.h"
#include "tools/txmq-bench/report.h"

namespace txmq::bench {

struct SendPlan {
  std::string broker;  // endpoint
  // CURVE key files (--curve-key, --server-key); empty: plaintext.
  std::string curve_key;
  std::string server_key;
  std::string topic;
  int producers = 1;
  int window = 256;
  int size = 1024;
  double duration_s = 3.0;
  int64_t count = 1'000'000;  // all producers together
};

// Runs one timed send run. `meter` (may be null) is started with the clock
// and stopped once every producer is done. Throws BenchError when a
// producer cannot be set up.
BenchResult RunSend(const SendPlan& plan, CpuMeter* meter);

}  // namespace txmq::bench
