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
// exception from the handler) makes it run again after a backoff, with a
// growing delivery count; after max_reconsume_times redeliveries it goes
// to the group's dead-letter topic "%DLQ%<group>". Delivery is
// at-least-once: make handlers idempotent (see txmq/inbox.h).
//
// Order. Messages of one topic with the same key are stored on one queue
// in send order, and the broker hands a queue's messages out in that order.
// A consumer runs them one at a time, in the order it received them: a
// message waits while an earlier message of its key runs or waits for a
// retry. Different keys, and messages without a key, run in parallel on
// handler_threads (handler_threads = 1 runs everything one at a time).
//  - Retry: when message k of a key fails (RetryLater, Compensate outside
//    an Inbox, or an exception), k stays with this consumer and runs again
//    after the delay (default: the broker's backoff for its delivery
//    count); k+1 waits and runs once, after k succeeded, or after k failed
//    max_reconsume_times redeliveries and went to the dead-letter topic.
//    A message without a key that fails goes back to the broker instead and
//    may come back after messages received later.
//  - Waiting is free: the consumer renews the leases of messages it holds
//    but has not started (waiting behind their key or for a retry), so they
//    are not delivered elsewhere meanwhile. A running handler is not
//    renewed: one that runs longer than visibility_timeout loses its lease.
//  - Lost lease (this consumer crashed or was cut off from the broker for
//    visibility_timeout, a handler overran it, or the broker restarted):
//    the broker delivers k again after its backoff, possibly to another
//    consumer of the group, and k+1 can overtake k then: the messages of
//    the key that were not leased yet are delivered at once, and each held
//    one after its own backoff. A broker restart delivers everything not
//    acknowledged again, in order. Shutdown gives held messages back in
//    order, due at once, before the key's later messages.
//  - Several consumers of a group share a topic's queues: the broker gives
//    each queue to one of them (least-loaded, about queues / consumers
//    each), so a key's messages run on one consumer at a time. When a
//    consumer joins or leaves, queues move; a queue reaches its new owner
//    only after the old one acked, failed or gave back every message of it
//    that it held. So a key keeps its order across consumers too, with the
//    lost-lease exception above. A topic's queue count caps how many
//    consumers of a group get work; the others wait, and take over when
//    one leaves. A consumer that vanishes (crash, cut off) keeps its
//    queues until the broker forgets it (its client_timeout, 10 s by
//    default), and what it held until its leases end; one that stays
//    connected but neither pulls nor renews a lease for the broker's max
//    long poll + client timeout (40 s by default) loses its queues too.
//    In a cluster of several broker groups the share is of the whole
//    topic: a consumer's connections to the groups count as one consumer.
//
// Thread safety: every method may be called from any thread. Subscribe
// before Start; Start after Shutdown fails. Handlers run on
// `handler_threads` library threads, concurrently (never two of one key at
// once); a handler must be safe to call from several threads at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "txmq/message.h"
#include "txmq/status.h"

namespace txmq {

class ConsumeResult {
 public:
  enum class Kind { kSuccess, kRetryLater, kCompensate };

  static ConsumeResult Success() { return ConsumeResult(Kind::kSuccess, {}, {}); }
  // Run again after `delay`; zero means the broker's backoff for the
  // delivery count (1s, 5s, 10s, 30s, 1m, ...). A message with a key is
  // retried by this consumer before the key's later messages run.
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
  // Broker endpoint, or a replicated group's nodes comma-separated: the
  // consumer pulls from the group's leader, and after a failover from the
  // next one (messages it held unacknowledged are delivered again). In a
  // cluster of several broker groups it also pulls from the leader of
  // every other group serving queues of its topics (asked every few
  // seconds, so topics placed later are found too).
  std::string broker = "tcp://127.0.0.1:7800";
  // CURVE, for a broker started with --curve-secret-key: the file of this
  // client's secret key (`txmqctl keygen NAME` writes NAME.key; the public
  // key is derived from it) and the file of the broker's public key (its
  // NAME.pub), which pins the broker: another key never gets an answer.
  // Both or neither; neither talks plaintext. Read at Start(); a broker
  // that refuses the key fails calls with PERMISSION_DENIED.
  std::string curve_key{};
  std::string server_key{};
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
  // the message to another consumer (counted as a failed delivery). The
  // consumer renews it for messages it holds without running them, every
  // half of it.
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
  // Held messages whose lease ended before they ran (again): the broker
  // delivers them again; see "Lost lease" above.
  uint64_t leases_lost = 0;
  // Ack requests sent: acks that pile up while one is in flight go
  // together in the next, so under load this is far below `succeeded`.
  uint64_t ack_requests = 0;
};

class Consumer {
 public:
  explicit Consumer(ConsumerOptions options);
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Before Start. One handler per topic; topics may be '%DLQ%<group>'.
  Status Subscribe(std::string topic, Handler handler);
  // FAILED_PRECONDITION when already started or shut down.
  Status Start();
  // Stops pulling, waits for running handlers and their acknowledgements
  // (at most a few seconds for the broker's answers), gives messages not
  // yet started back to the broker (delivered again at once, each key's in
  // order, not counted as failures), and says goodbye, so whatever is
  // still leased is given back too. Final and idempotent: a second call
  // waits for the first to finish. From a handler it only starts the stop
  // (a handler cannot wait for itself); the destructor waits for it.
  void Shutdown();

  ConsumerStats stats() const;
  const ConsumerOptions& options() const { return options_; }

  class Impl;

 private:
  ConsumerOptions options_;
  mutable std::mutex mu_;  // guards what follows
  std::map<std::string, Handler> handlers_;
  bool shut_down_ = false;
  std::unique_ptr<Impl> impl_;  // lives until the destructor
};

}  // namespace txmq
