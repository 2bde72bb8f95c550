// The command line of txmq-bench (CLI11).
#pragma once

#include "tools/txmq-bench/options.h"

namespace txmq::bench {

// Exit codes: 1 = the run failed, 2 = bad usage.
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Fills `options` from argv. Returns -1 when the run should go ahead, else
// the exit code (0 after --help or --version, kExitUsage after an error,
// which it has already printed).
int ParseCommandLine(int argc, char** argv, BenchOptions* options);

// "produce p=4 w=256" / "consume w=256 (ack/msg)" / "txn p=4 (commit/msg)":
// the peers' row names; names of our own for commit-visible and checkback.
std::string DefaultScenarioName(const BenchOptions& options);

}  // namespace txmq::bench
