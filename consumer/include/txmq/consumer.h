// txmq::Consumer: receives messages of a consumer group and runs a handler
// for each.
//
//   txmq::Consumer consumer({.broker = "tcp://127.0.0.1:7800", .group = "billing"});
//   consumer.Subscribe("order-created", [](const txmq::Received& m) {
//     charge(m.body);
//     return txmq::ConsumeResult::Success();
//   });
//   consumer.Start();
//   ...
//   consumer.Shutdown();   // waits for running handlers
//
// Every consumer group gets every message of the topics it subscribes to;
// consumers of one group share them. A message is leased to one consumer
// until its handler returns: Success acknowledges it; RetryLater (or an
// exception from the handler) makes the broker deliver it again after a
// backoff, with a growing delivery count; after max_reconsume_times
// redeliveries it goes to the group's dead-letter topic "%DLQ%<group>".
// Delivery is at-least-once: make handlers idempotent (see txmq/inbox.h).
//
// Thread safety: Subscribe before Start; Start and Shutdown from one thread.
// Handlers run on `handler_threads` library threads, concurrently; a
// handler must be safe to call from several threads at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "txmq/message.h"
#include "txmq/status.h"

namespace txmq {

class ConsumeResult {
 public:
  enum class Kind { kSuccess, kRetryLater, kCompensate };

  static ConsumeResult Success() { return ConsumeResult(Kind::kSuccess, {}, {}); }
  // Deliver again after `delay`; zero means the broker's backoff for the
  // delivery count (1s, 5s, 10s, 30s, 1m, ...).
  static ConsumeResult RetryLater(std::chrono::milliseconds delay = std::chrono::milliseconds(0)) {
    return ConsumeResult(Kind::kRetryLater, delay, {});
  }
  // A business failure that must be undone by the producer (see
  // txmq/inbox.h). Outside an Inbox it is treated as RetryLater.
  static ConsumeResult Compensate(std::string reason) {
    return ConsumeResult(Kind::kCompensate, {}, std::move(reason));
  }

  Kind kind() const { return kind_; }
  std::chrono::milliseconds delay() const { return delay_; }
  const std::string& reason() const { return reason_; }

 private:
  ConsumeResult(Kind kind, std::chrono::milliseconds delay, std::string reason)
      : kind_(kind), delay_(delay), reason_(std::move(reason)) {}
  Kind kind_;
  std::chrono::milliseconds delay_;
  std::string reason_{};
};

using Handler = std::function<ConsumeResult(const Received&)>;

struct ConsumerOptions {
  std::string broker = "tcp://127.0.0.1:7800";
  // Consumer group, [A-Za-z0-9_.-]{1,127}. Required.
  std::string group{};
  // Threads running handlers.
  int handler_threads = 4;
  // Flow control: most messages received and not yet finished.
  int max_in_flight = 256;
  // Most messages asked for in one pull.
  int pull_batch = 64;
  // How long one pull waits at the broker for messages (long polling).
  std::chrono::milliseconds long_poll{5000};
  // How long the broker waits for a handler's outcome before it delivers
  // the message to another consumer (counted as a failed delivery).
  std::chrono::milliseconds visibility_timeout{30000};
  // Redeliveries before the dead-letter topic; 0 = the broker's default (16).
  uint32_t max_reconsume_times = 0;
  // Where a group starts on a topic it has never read: its oldest retained
  // message (false, nothing is missed) or its end (true).
  bool start_from_latest = false;
  // Identifies this consumer to the broker; a new UUIDv7 if empty.
  std::string client_id{};
};

struct ConsumerStats {
  uint64_t received = 0;
  uint64_t succeeded = 0;
  uint64_t retried = 0;  // RetryLater, Compensate outside an Inbox, or an exception
  uint64_t ack_errors = 0;
};

class Consumer {
 public:
  explicit Consumer(ConsumerOptions options);
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Before Start. One handler per topic; topics may be '%DLQ%<group>'.
  Status Subscribe(std::string topic, Handler handler);
  Status Start();
  // Stops pulling, waits for running handlers and their acknowledgements,
  // gives messages not yet started back to the broker (they are delivered
  // again at once, not counted as failures). Idempotent.
  void Shutdown();

  ConsumerStats stats() const;
  const ConsumerOptions& options() const { return options_; }

  class Impl;

 private:
  ConsumerOptions options_;
  std::map<std::string, Handler> handlers_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace txmq
