// The commit-visible scenario: how long after a producer learns that its
// transaction is committed does a consumer see the message? One
// transaction producer commits transactions one at a time while one
// consumer (its own group, long polling) receives them.
#pragma once

#include <cstdint>
#include <string>

#include "tools/txmq-bench/cpu_meter.h"
#include "tools/txmq-bench/report.h"

namespace txmq::bench {

struct CommitVisiblePlan {
  std::string broker;  // endpoint
  // CURVE key files (--curve-key, --server-key); empty: plaintext.
  std::string curve_key;
  std::string server_key;
  std::string topic;
  std::string group;  // producer group and consumer group (separate namespaces)
  int size = 1024;
  double duration_s = 10.0;
  int64_t count = 3000;  // transactions
};

// Latency per message: from SendInTransaction returning (the commit is
// acknowledged, so durable) to the consumer's handler seeing the message,
// both on this process's steady clock. msgs/s = messages seen / (last seen
// - start). `meter` (may be null) covers the timed part. Throws BenchError
// on setup failures.
BenchResult RunCommitVisible(const CommitVisiblePlan& plan, CpuMeter* meter);

}  // namespace txmq::bench
