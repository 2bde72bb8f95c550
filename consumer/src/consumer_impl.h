// Consumer::Impl, split over three files: consumer.cc (lifecycle, pulling,
// handlers and their outcomes), consumer_leases.cc (failure reports and
// lease upkeep) and consumer_sources.cc (which broker groups it pulls
// from). The threads and the data each owns are listed at the top of
// consumer.cc, which starts them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "consumer/src/held_messages.h"
#include "protocol/src/connection.h"
#include "protocol/src/log.h"
#include "txmq/consumer.h"

namespace txmq {

inline constexpr auto kAckTimeout = std::chrono::seconds(10);
inline constexpr size_t kMaxReceiptsPerRequest = 512;

// Names the lease of `m` in an ack, nack or extension.
inline void AddReceipt(wire::Receipt::Builder r, const Received& m) {
  r.setTopic(m.topic);
  r.setQueue(m.queue);
  r.setOffset(m.offset);
  r.setRetryId(m.lease.retry_id);
  r.setLeaseId(m.lease.lease_id);
}

// What an ack names, kept while it waits for the ack request in flight.
struct AckReceipt {
  std::string topic;
  uint32_t queue = 0;
  uint64_t offset = 0;
  uint64_t retry_id = 0;
  uint64_t lease_id = 0;
};

// Where messages come from: the connection the consumer was given (home),
// and in a cluster one connection per other broker group serving queues of
// its topics (consumer_sources.cc). A message's ack, nack and renewals go
// back to the source it came from: its lease is that group's.
struct ConsumerSource {
  std::string group;  // "" for home
  std::string url;    // another group's leader as last routed
  // Replaced when that group's leader moves; calls in flight on the old
  // one fail (their messages come back, at-least-once). Guarded by the
  // consumer's mu_.
  std::shared_ptr<net::Connection> connection;
  std::thread puller;                    // "txmq-pull", for the consumer's life
  std::vector<AckReceipt> acks_waiting;  // guarded by mu_
  bool ack_in_flight = false;            // guarded by mu_
};

class Consumer::Impl {
 public:
  Impl(const ConsumerOptions& options, std::map<std::string, Handler> handlers);
  ~Impl();

  Status Start();
  // See Consumer::Shutdown. On a handler thread it only starts the stop.
  void Shutdown();
  ConsumerStats stats() const;

 private:
  bool OnHandlerThread() const;
  // Stops intake, lets running handlers finish and their outcomes reach the
  // broker, gives every other held message back (each key's in order), and
  // says goodbye. Calls still unanswered then end UNAVAILABLE; the broker
  // gives their messages back on goodbye, or redelivers them after the
  // lease. Serialised: a second caller waits for the first to finish.
  void StopAndWait();

  void PullLoop(uint32_t source);
  // Free places for messages under max_in_flight. Needs mu_.
  int Room() const;
  // I/O thread.
  void OnPulled(uint32_t source, Result<wire::Frame> reply,
                std::shared_ptr<std::optional<Status>> outcome);
  void WorkLoop();
  ConsumeResult Run(const Received& m);
  // The message is done with here; the next one of its key may run.
  void Done(HeldMessages::Id id);
  // Ack on success, else a nack: the broker redelivers it after the delay.
  void SendOutcome(uint32_t source, const Received& m, const ConsumeResult& result);
  // Acks go one request at a time per source: those that arrive while one
  // is in flight wait and go together in the next (as a group commit
  // batches writes), so a busy consumer sends one ack request per round
  // trip, not one per message, and a lone ack still goes at once.
  void QueueAck(uint32_t source, const Received& m);
  void SendAcks(uint32_t source, std::vector<AckReceipt> batch);  // with its ack_in_flight set
  void OnAcked(uint32_t source, size_t count, Result<wire::Frame> reply);
  // Gives messages back unprocessed: delivered again at once, not counted.
  void Release(uint32_t source, const std::vector<Received>& messages);
  // The source's connection now.
  std::shared_ptr<net::Connection> ConnectionOf(uint32_t source);
  // Sends a call whose answer Shutdown waits for (bounded).
  void Track(net::Connection& connection, wire::OutFrame request, std::chrono::milliseconds timeout,
             std::function<void(Result<wire::Frame>)> on_reply);

  // consumer_leases.cc.
  // Counts the failed delivery at the broker and keeps the message leased:
  // it runs again here after the delay, unless the broker dead-lettered it
  // (or cannot hold it: then it is nacked).
  void ReportFailure(HeldMessages::Id id, uint32_t source, const Received& m,
                     std::chrono::milliseconds delay);
  // Thread "txmq-lease".
  void KeepLoop();
  // `ids` and `messages` all of `source`.
  void Renew(uint32_t source, const std::vector<HeldMessages::Id>& ids,
             const std::vector<Received>& messages);
  // I/O thread.
  void OnRenewed(const std::vector<HeldMessages::Id>& ids, SteadyTime sent_at,
                 Result<wire::Frame> reply);

  // consumer_sources.cc. Thread "txmq-route".
  void RouteLoop();
  // Asks home where the subscribed topics' queues are and gives every
  // other broker group serving some of them a source.
  void RefreshSources();
  // A call to home the route thread waits for, or nothing once stopping.
  std::optional<Result<wire::Frame>> AskHome(net::Connection& home, wire::OutFrame request);
  // Under mu_: a new source pulling from `url`, its puller started.
  void AddSource(std::string group, std::string url, std::shared_ptr<net::Connection> c);
  // The options of a connection to `url` (of broker group `group`).
  net::ConnectionOptions SourceOptions(const std::string& group, const std::string& url);

  const ConsumerOptions options_;
  const std::map<std::string, Handler> handlers_;
  std::shared_ptr<spdlog::logger> log_;
  net::ConnectionOptions home_options_;  // written by Start only
  // sources_[0] is home. Grows while running (the route thread adds,
  // under mu_); each puller reads only its own entry's connection.
  std::vector<std::unique_ptr<ConsumerSource>> sources_;
  std::thread router_, keeper_, stopper_;
  std::vector<std::thread> workers_;  // written by Start only
  bool started_ = false;              // written by Start only

  std::mutex shutdown_mu_;  // one StopAndWait at a time
  bool stopped_ = false;    // guarded by shutdown_mu_

  std::mutex mu_;
  std::condition_variable puller_cv_;  // pull outcomes, room, stopping
  std::condition_variable work_cv_;    // ready messages, stopping
  std::condition_variable keeper_cv_;  // held messages changed, stopping
  std::condition_variable calls_cv_;   // a tracked call was answered
  std::condition_variable router_cv_;  // stopping
  HeldMessages held_;                  // guarded by mu_
  size_t pending_calls_ = 0;           // guarded by mu_
  bool stopping_ = false;              // guarded by mu_
  bool released_ = false;              // guarded by mu_: Shutdown gave back what was held
  // Guarded by mu_. Pull replies that arrive after released_ but before
  // Shutdown sent its give-back of what was held: given back after it, so
  // that a key's later messages never come back before its earlier ones.
  bool held_given_back_ = false;
  std::vector<std::pair<uint32_t, std::vector<Received>>> late_;
  bool refresh_soon_ = false;  // guarded by mu_: another group's pull failed
  // Connections of sources whose group's leader moved, closed; dropped by
  // the route thread once nothing else holds them. Guarded by mu_.
  std::vector<std::shared_ptr<net::Connection>> retired_;
  SteadyTime renew_not_before_{};  // guarded by mu_: after a failed renewal
  bool renew_failing_ = false;     // guarded by mu_: said so in the log

  std::atomic<uint64_t> received_{0}, succeeded_{0}, retried_{0}, ack_errors_{0}, leases_lost_{0},
      ack_requests_{0};
};

}  // namespace txmq
