// What one txmq-bench run is asked to do, as parsed from the command line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace txmq::bench {

// kPreload only fills --topic with --consume-count messages for a later
// `consume --no-preload` run (the peers harness prefills in its own step).
// kTxn, kCommitVisible and kCheckback measure transactional messages.
enum class Scenario { kSend, kConsume, kPreload, kTxn, kCommitVisible, kCheckback };

struct BenchOptions {
  Scenario scenario = Scenario::kSend;
  // Producers (send, txn, checkback) — each one its own connection and
  // thread.
  int producers = 1;
  // Most unacknowledged sends per producer; the consumer's pull batch and
  // in-flight limit (consume).
  int window = 256;
  // Payload bytes per message.
  int size = 1024;
  // Time bound of the timed part, seconds (unless given: 15 for consume,
  // 10 for commit-visible, 3 for the others).
  double duration_s = 3.0;
  // Message (transaction) bound of one send, txn or checkback run, all
  // producers together; commit-visible: 3,000 unless given.
  int64_t count = 1'000'000;
  // txn, checkback: how the producers end transactions (true: in the
  // background, TransactionEndMode::kBackground) and how many each keeps
  // in flight (1: SendInTransaction, one at a time; more:
  // SendInTransactionAsync with that window).
  bool txn_background_end = false;
  int txn_window = 1;
  // checkback: share of transactions whose local transaction answers
  // UNKNOWN, so that only the broker's check-back can end them.
  int unknown_percent = 10;
  // txn: the local transactions answer UNKNOWN and the run never ends them
  // (they stay open in the broker until its --transaction-timeout).
  bool leave_open = false;
  // consume: the consumer's in-flight limit (0 = window) and handler
  // threads. The peers' scenario is window / 1; other values are for
  // finding out where the time goes.
  int max_in_flight = 0;
  int handler_threads = 1;
  // Messages preloaded and then drained by the consume scenario.
  int64_t consume_count = 50'000;
  // Existing broker; empty = start txmqd on a fresh data dir.
  std::string broker;
  // The txmqd binary used when starting one; empty = next to txmq-bench.
  std::string txmqd;
  // Flush mode of the broker txmq-bench starts.
  std::string flush = "sync";
  // More txmqd arguments (one word each) for the broker txmq-bench starts;
  // a flag named here replaces txmq-bench's own default for it.
  std::vector<std::string> broker_args;
  // Topic name; empty = a fresh bench-<uuid> per run.
  std::string topic;
  // consume: --topic already holds consume_count messages (from an earlier
  // --scenario preload run), so the run does not preload them again.
  bool no_preload = false;

  // Output.
  bool json = false;
  bool result_line = false;
  std::string system = "txmq";
  std::string scenario_name;  // empty = derived ("produce p=1 w=256", ...)
  std::string notes;          // empty = derived from the broker settings
};

// Producer `index`'s share of a bound of `total` over `parts` producers,
// spread like the peers' quota(): the first total % parts get one more.
inline int64_t ShareOf(int64_t total, int parts, int index) {
  return total / parts + (index < total % parts ? 1 : 0);
}

}  // namespace txmq::bench
