// The transaction scenarios' producers. `txn` is the peers' "txn p=P
// (commit/msg)": P producers, each its own txmq::TransactionProducer
// (connection) on its own thread, every message its own transaction (half
// message, an empty local transaction, acknowledged commit), one
// transaction in flight per producer; or, with TxnPlan's background_end
// and window, ends in the background and many transactions in flight. The
// checkback scenario runs the same producers with some local transactions
// left undecided.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tools/txmq-bench/cpu_meter.h"
#include "tools/txmq-bench/report.h"
#include "tools/txmq-bench/start_gate.h"

namespace txmq::bench {

struct TxnPlan {
  std::string broker;  // endpoint
  // CURVE key files (--curve-key, --server-key); empty: plaintext.
  std::string curve_key;
  std::string server_key;
  std::string topic;
  // Producer group of every producer of the run: the broker checks back
  // only within it, so a run never answers another run's checks.
  std::string group;
  int producers = 1;
  int size = 1024;
  double duration_s = 3.0;
  int64_t count = 1'000'000;  // transactions, all producers together
  // This share of each producer's local transactions, spread evenly (with
  // 10: the 10th, 20th, ...), answers UNKNOWN: the producer sends no
  // outcome, and the broker's check-back ends the transaction. The checker
  // answers COMMIT.
  int unknown_percent = 0;
  // TransactionEndMode::kBackground: a call returns once the local
  // transaction decided; the producers wait for their last ends to be
  // confirmed (FlushEnds) before the clock stops.
  bool background_end = false;
  // Transactions in flight per producer: 1 runs SendInTransaction one at a
  // time; more runs SendInTransactionAsync with this transaction_window
  // (no half/end split then: the local transactions run on library threads).
  int window = 1;
};

// What the producers of one run did in the timed part.
struct TxnRun {
  SteadyTime start{};
  SteadyTime last_return{};      // the last SendInTransaction of any producer returned
  uint64_t committed = 0;        // local COMMIT, and the broker confirmed the commit
  uint64_t unknown = 0;          // local UNKNOWN, half message stored
  uint64_t errors = 0;           // failed calls, or a commit the broker did not confirm
  uint64_t checks_answered = 0;  // by the producers' checkers, until they shut down
  // Per transaction, from just before SendInTransaction to its return.
  std::vector<int64_t> latencies_ns;
  // Its two parts (the local transaction runs once the half message is
  // acknowledged): before it, and after it (commits only). They show
  // whether the half message or the end costs more.
  std::vector<int64_t> half_ns;
  std::vector<int64_t> end_ns;
};

// Runs one timed transaction run. `meter` (may be null) starts with the
// clock; it is not stopped here. `after` (may be empty) runs once the
// producers are done sending but are still connected, so their checkers
// still answer the broker's checks; the producers shut down when it
// returns. Throws BenchError when a producer cannot be set up.
TxnRun RunTransactions(const TxnPlan& plan, CpuMeter* meter,
                       const std::function<void(const TxnRun&)>& after);

// The txn scenario: msgs/s = committed transactions / (last return -
// start); latency per transaction; the half/end parts as details.
BenchResult RunTxn(const TxnPlan& plan, CpuMeter* meter);

// Adds the p50/p99 of the half and end parts to `result` (reorders the
// samples of `run`).
void AddPhaseDetails(TxnRun& run, BenchResult* result);

}  // namespace txmq::bench
