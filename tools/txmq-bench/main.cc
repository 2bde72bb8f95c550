// txmq-bench: measures a txmq broker the way the peers harness
// (../shared/peers beside the repository) measures RabbitMQ, Redis and NATS, so the numbers
// can stand in the same table. See README.md and --help.
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>

#include "protocol/src/util.h"
#include "tools/txmq-bench/bench_error.h"
#include "tools/txmq-bench/broker_process.h"
#include "tools/txmq-bench/checkback_scenario.h"
#include "tools/txmq-bench/cli.h"
#include "tools/txmq-bench/commit_visible_scenario.h"
#include "tools/txmq-bench/consume_scenario.h"
#include "tools/txmq-bench/cpu_meter.h"
#include "tools/txmq-bench/report.h"
#include "tools/txmq-bench/send_scenario.h"
#include "tools/txmq-bench/txn_scenario.h"
#include "txmq/logging.h"

namespace txmq::bench {
namespace {

// txmqd's arguments (beyond --listen, --data-dir and --ready-file): the
// flush mode, quiet logs, the checkback scenario's short check timing, and
// the user's --broker-arg words, which replace a default for the same flag.
std::vector<std::string> BrokerArgs(const BenchOptions& o) {
  std::vector<BrokerFlag> defaults{{"--flush", o.flush}, {"--log-level", "warn"}};
  if (o.scenario == Scenario::kCheckback) {
    for (const auto& [flag, value] : kCheckbackBrokerFlags) defaults.emplace_back(flag, value);
  }
  return MergeBrokerArgs(defaults, o.broker_args);
}

int Run(BenchOptions& o) {
  // Info lines of the client libraries (connects, goodbyes) would drown the
  // result; warnings (failed acks, timeouts) explain a bad run, so keep them.
  SetLogLevel(LogLevel::kWarn);

  std::unique_ptr<BrokerProcess> broker;
  std::string endpoint = o.broker;
  if (endpoint.empty()) {
    // Reported as given to txmqd (JSON "broker_args").
    o.broker_args = BrokerArgs(o);
    // A --broker-arg may have replaced the flush mode; the notes name it.
    for (size_t i = 0; i < o.broker_args.size(); ++i) {
      const std::string& a = o.broker_args[i];
      if (a == "--flush" && i + 1 < o.broker_args.size()) o.flush = o.broker_args[i + 1];
      if (a.starts_with("--flush=")) o.flush = a.substr(8);
    }
    broker = std::make_unique<BrokerProcess>(o.txmqd, o.broker_args);
    endpoint = broker->endpoint();
  }
  CpuMeter meter(broker ? broker->pid() : -1);
  // Runs never see each other's messages, nor answer each other's checks.
  const std::string run_id = NewUuidV7();
  const std::string topic = o.topic.empty() ? "bench-" + run_id : o.topic;
  const TxnPlan txn{.broker = endpoint,
                    .topic = topic,
                    .group = "bench-" + run_id,
                    .producers = o.producers,
                    .size = o.size,
                    .duration_s = o.duration_s,
                    .count = o.count,
                    .unknown_percent = o.scenario == Scenario::kCheckback ? o.unknown_percent
                                       : o.leave_open                     ? 100
                                                                          : 0,
                    .background_end = o.txn_background_end,
                    .window = o.txn_window};

  BenchResult result;
  switch (o.scenario) {
    case Scenario::kSend:
      result = RunSend({.broker = endpoint,
                        .topic = topic,
                        .producers = o.producers,
                        .window = o.window,
                        .size = o.size,
                        .duration_s = o.duration_s,
                        .count = o.count},
                       &meter);
      break;
    case Scenario::kConsume:
      result = RunConsume({.broker = endpoint,
                           .topic = topic,
                           .window = o.window,
                           .max_in_flight = o.max_in_flight,
                           .handler_threads = o.handler_threads,
                           .size = o.size,
                           .duration_s = o.duration_s,
                           .count = o.consume_count,
                           .preload = !o.no_preload},
                          &meter);
      break;
    case Scenario::kPreload:
      Preload({.broker = endpoint,
               .topic = topic,
               .window = o.window,
               .size = o.size,
               .count = o.consume_count});
      printf("preloaded %lld messages of %d bytes into '%s'\n",
             static_cast<long long>(o.consume_count), o.size, topic.c_str());
      return 0;
    case Scenario::kTxn:
      result = RunTxn(txn, &meter);
      break;
    case Scenario::kCommitVisible:
      result = RunCommitVisible({.broker = endpoint,
                                 .topic = topic,
                                 .group = txn.group,
                                 .size = o.size,
                                 .duration_s = o.duration_s,
                                 .count = o.count},
                                &meter);
      break;
    case Scenario::kCheckback:
      result = RunCheckback(txn, &meter);
      break;
  }
  result.broker_cpu = meter.broker_cores();
  result.client_cpu = meter.client_cores();
  // Stop the broker before printing: a broker that fails to stop cleanly is
  // reported (as a warning) next to the numbers it produced.
  broker.reset();
  PrintReport(o, result);
  if (result.messages == 0) {
    std::cerr << "txmq-bench: no message was acknowledged or seen (" << result.errors
              << " errors)\n";
    return kExitFailure;
  }
  if (result.errors > 0) {
    std::cerr << "txmq-bench: warning: " << result.errors
              << " sends, transactions or acks failed or were not answered in time\n";
  }
  return 0;
}

}  // namespace
}  // namespace txmq::bench

int main(int argc, char** argv) {
  using namespace txmq::bench;
  // Before any thread exists, so that every thread inherits the signal mask.
  BrokerProcess::StopOnSignals();
  BenchOptions options;
  if (int rc = ParseCommandLine(argc, argv, &options); rc >= 0) return rc;
  try {
    return Run(options);
  } catch (const std::exception& e) {
    std::cerr << "txmq-bench: " << e.what() << "\n";
    return kExitFailure;
  }
}
