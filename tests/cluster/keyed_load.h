// A producer thread that sends keyed messages at a steady rate until
// stopped, recording every send in an OpHistory. Each key has at most one
// send in flight, so a key's acknowledged sends were made (and stored) one
// after the other: the per-key order check rests on that.
//
// Thread safety: Stop() and the history may be used from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "tests/cluster/op_history.h"
#include "txmq/producer.h"

namespace txmq::testing {

struct KeyedLoadOptions {
  std::string brokers;  // a bootstrap list
  std::string topic = "orders";
  int keys = 8;
  int per_second = 300;
  std::chrono::milliseconds send_timeout{2000};
  int retries = 5;
  std::string id_prefix = "op";
};

class KeyedLoad {
 public:
  KeyedLoad(KeyedLoadOptions options, OpHistory& history);
  // Stop().
  ~KeyedLoad();
  KeyedLoad(const KeyedLoad&) = delete;
  KeyedLoad& operator=(const KeyedLoad&) = delete;

  // Stops making sends and waits (bounded by the sends' own timeouts and
  // retries) for those in flight to complete.
  void Stop();

 private:
  void Run();

  const KeyedLoadOptions options_;
  OpHistory& history_;
  std::atomic<bool> stop_{false};
  std::atomic<int> in_flight_{0};
  std::thread thread_;
};

}  // namespace txmq::testing
