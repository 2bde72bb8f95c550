// What a run measured and the three ways of printing it: a human line, a
// JSON object (--json) and the peers harness's RESULT line (--result-line).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tools/txmq-bench/options.h"

namespace txmq::bench {

// A number only some scenarios have (e.g. checks sent): a field of the JSON
// object, and `human` (may be empty) a part of the human line.
struct ResultDetail {
  std::string key;
  double value = 0;
  std::string human;
};

struct BenchResult {
  // Acknowledged sends (send), handled messages (consume), committed
  // transactions (txn), messages the consumer saw (commit-visible), or
  // transactions ended either way (checkback).
  uint64_t messages = 0;
  // Timed part: start -> last ack (send, txn), Start -> Shutdown done
  // (consume), start -> last message seen (commit-visible), start -> the
  // broker has nothing open (checkback).
  double secs = 0;
  // Per message: send -> durable ack (send), per transaction (txn,
  // checkback), commit acknowledged -> consumer sees it (commit-visible).
  // Empty for consume.
  std::vector<int64_t> latencies_ns;
  // Sends, transactions or acks that failed.
  uint64_t errors = 0;
  // Scenario-specific numbers, in the order to print them.
  std::vector<ResultDetail> details;
  // Broker CPU in cores during the timed part; empty when not measured.
  std::optional<double> broker_cpu;
  // txmq-bench's own CPU in cores during the timed part (client libraries
  // included): near the machine's core count means the client limited the run.
  std::optional<double> client_cpu;

  double msgs_per_s() const { return secs > 0 ? static_cast<double>(messages) / secs : 0.0; }
};

// 52341.7 -> "52,342".
std::string WithThousands(double value);

// Nearest-rank percentile (0 < p <= 1) in milliseconds; empty without
// samples. Reorders `samples`.
std::optional<double> PercentileMs(std::vector<int64_t>& samples, double p);

// Prints the human line, then the RESULT line and/or the JSON object
// (always last) as asked for in `options`.
void PrintReport(const BenchOptions& options, BenchResult& result);

}  // namespace txmq::bench
