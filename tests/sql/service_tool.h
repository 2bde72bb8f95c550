// What the test services (txmq-test-pgservice, txmq-test-sqliteservice)
// share: how they report progress and wait for their end.
#pragma once

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "txmq/consumer.h"
#include "txmq/producer.h"

namespace txmq::testing {

// The test kills the service (SIGKILL); it never ends by itself.
[[noreturn]] inline void WaitToBeKilled() {
  while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
}

// Replaces `path` with `text` at once (a reader never sees half of it).
inline void WriteAtomically(const std::string& path, const std::string& text) {
  std::ofstream(path + ".tmp") << text << "\n";
  std::rename((path + ".tmp").c_str(), path.c_str());
}

// The relay settings of a test service: short timeouts and backoff, so a
// kill test finishes in seconds; the OutboxOptions of either backend.
template <class OutboxOptions>
void SetTestRelayOptions(OutboxOptions& o, const std::string& broker, const std::string& instance,
                         std::chrono::milliseconds lease, std::chrono::milliseconds poll) {
  using namespace std::chrono_literals;
  o.producer = {.broker = broker, .group = "orders", .send_timeout = 300ms, .retries = 0};
  o.lease = lease;
  o.backoff_initial = 20ms;
  o.backoff_max = 200ms;
  o.poll_interval = poll;
  o.max_in_flight = 8;
  o.instance = instance;
}

// The consumer of a kill test (group "billing"): a short visibility
// timeout, so what a killed consumer held comes back within seconds.
inline ConsumerOptions TestConsumerOptions(const std::string& broker) {
  using namespace std::chrono_literals;
  return {.broker = broker,
          .group = "billing",
          .handler_threads = 2,
          .long_poll = 200ms,
          .visibility_timeout = 2s};
}

}  // namespace txmq::testing
