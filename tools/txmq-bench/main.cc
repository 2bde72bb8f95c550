// txmq-bench: measures a txmq broker the way the peers harness
// (/work/shared/peers) measures RabbitMQ, Redis and NATS, so the numbers
// can stand in the same table. See README.md and --help.
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>

#include "protocol/src/util.h"
#include "tools/txmq-bench/bench_error.h"
#include "tools/txmq-bench/broker_process.h"
#include "tools/txmq-bench/cli.h"
#include "tools/txmq-bench/consume_scenario.h"
#include "tools/txmq-bench/cpu_meter.h"
#include "tools/txmq-bench/report.h"
#include "tools/txmq-bench/send_scenario.h"
#include "txmq/logging.h"

namespace txmq::bench {
namespace {

int Run(BenchOptions& o) {
  // Info lines of the client libraries (connects, goodbyes) would drown the
  // result; warnings (failed acks, timeouts) explain a bad run, so keep them.
  SetLogLevel(LogLevel::kWarn);

  std::unique_ptr<BrokerProcess> broker;
  std::string endpoint = o.broker;
  if (endpoint.empty()) {
    broker = std::make_unique<BrokerProcess>(o.txmqd, o.flush);
    endpoint = broker->endpoint();
  }
  CpuMeter meter(broker ? broker->pid() : -1);
  // Runs never see each other's messages.
  const std::string topic = o.topic.empty() ? "bench-" + NewUuidV7() : o.topic;

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
  }
  result.broker_cpu = meter.broker_cores();
  result.client_cpu = meter.client_cores();
  // Stop the broker before printing: a broker that fails to stop cleanly is
  // reported (as a warning) next to the numbers it produced.
  broker.reset();
  PrintReport(o, result);
  if (result.messages == 0) {
    std::cerr << "txmq-bench: no message was acknowledged (" << result.errors << " errors)\n";
    return kExitFailure;
  }
  if (result.errors > 0) {
    std::cerr << "txmq-bench: warning: " << result.errors
              << " sends or acks failed or were not answered in time\n";
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
