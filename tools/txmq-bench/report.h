// What a run measured and the three ways of printing it: a human line, a
// JSON object (--json) and the peers harness's RESULT line (--result-line).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tools/txmq-bench/options.h"

namespace txmq::bench {

struct BenchResult {
  // Acknowledged sends (send) or handled messages (consume).
  uint64_t messages = 0;
  // Timed part: start -> last ack (send), Start -> Shutdown done (consume).
  double secs = 0;
  // Send -> durable ack per message, all producers (empty for consume).
  std::vector<int64_t> latencies_ns;
  // Sends or acks that failed.
  uint64_t errors = 0;
  // Broker CPU in cores during the timed part; empty when not measured.
  std::optional<double> broker_cpu;
  // txmq-bench's own CPU in cores during the timed part (client libraries
  // included): near the machine's core count means the client limited the run.
  std::optional<double> client_cpu;

  double msgs_per_s() const { return secs > 0 ? static_cast<double>(messages) / secs : 0.0; }
};

// Nearest-rank percentile (0 < p <= 1) in milliseconds; empty without
// samples. Reorders `samples`.
std::optional<double> PercentileMs(std::vector<int64_t>& samples, double p);

// Prints the human line, then the RESULT line and/or the JSON object
// (always last) as asked for in `options`.
void PrintReport(const BenchOptions& options, BenchResult& result);

}  // namespace txmq::bench
