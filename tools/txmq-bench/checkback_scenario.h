// The checkback scenario: transaction producers as in `txn`, but a share of
// the local transactions answers UNKNOWN, so the producer sends no outcome
// and only the broker's check-back (transaction timeout, then a check that
// the producers' checker answers with COMMIT) ends them. It measures what
// that costs the mix while sending, and how long the broker takes to end
// what was left open once the producers stop.
#pragma once

#include "tools/txmq-bench/cpu_meter.h"
#include "tools/txmq-bench/report.h"
#include "tools/txmq-bench/txn_scenario.h"

namespace txmq::bench {

// The check timing txmq-bench gives a broker it starts for this scenario
// (unless --broker-arg names the flag): checks within about a second, so a
// run does not mostly wait for txmqd's default 6 s transaction timeout.
inline constexpr const char* kCheckbackBrokerFlags[][2] = {
    {"--transaction-timeout", "1s"},
    {"--check-interval", "500ms"},
    {"--check-interval-max", "2s"},
    {"--check-timeout", "1s"},
};

// Runs the producers (plan.unknown_percent of them undecided), then polls
// the broker's status until it holds no more open transactions than before
// the run. msgs/s = transactions ended either way / (nothing open - start).
// `meter` (may be null) covers both parts. Throws BenchError on setup
// failures or when the broker's status cannot be read.
BenchResult RunCheckback(const TxnPlan& plan, CpuMeter* meter);

}  // namespace txmq::bench
