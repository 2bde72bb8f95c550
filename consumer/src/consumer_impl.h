// Consumer::Impl, split over two files: consumer.cc (lifecycle, pulling,
// handlers and their outcomes) and consumer_leases.cc (failure reports and
// lease upkeep). The threads and the data each owns are listed at the top
// of consumer.cc, which starts them.
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

  void PullLoop();
  // Free places for messages under max_in_flight. Needs mu_.
  int Room() const;
  // I/O thread.
  void OnPulled(Result<wire::Frame> reply, std::shared_ptr<std::optional<Status>> outcome);
  void WorkLoop();
  ConsumeResult Run(const Received& m);
  // The message is done with here; the next one of its key may run.
  void Done(HeldMessages::Id id);
  // Ack on success, else a nack: the broker redelivers it after the delay.
  void SendOutcome(const Received& m, const ConsumeResult& result);
  // Acks go one request at a time: those that arrive while one is in
  // flight wait and go together in the next (as a group commit batches
  // writes), so a busy consumer sends one ack request per round trip, not
  // one per message, and a lone ack still goes at once.
  void QueueAck(const Received& m);
  void SendAcks(std::vector<AckReceipt> batch);  // with ack_in_flight_ set
  void OnAcked(size_t count, Result<wire::Frame> reply);
  // Gives messages back unprocessed: delivered again at once, not counted.
  void Release(const std::vector<Received>& messages);
  // Sends a call whose answer Shutdown waits for (bounded).
  void Track(wire::OutFrame request, std::chrono::milliseconds timeout,
             std::function<void(Result<wire::Frame>)> on_reply);

  // consumer_leases.cc.
  // Counts the failed delivery at the broker and keeps the message leased:
  // it runs again here after the delay, unless the broker dead-lettered it
  // (or cannot hold it: then it is nacked).
  void ReportFailure(HeldMessages::Id id, const Received& m, std::chrono::milliseconds delay);
  // Thread "txmq-lease".
  void KeepLoop();
  void Renew(const std::vector<HeldMessages::Id>& ids, const std::vector<Received>& messages);
  // I/O thread.
  void OnRenewed(const std::vector<HeldMessages::Id>& ids, SteadyTime sent_at,
                 Result<wire::Frame> reply);

  const ConsumerOptions options_;
  const std::map<std::string, Handler> handlers_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<net::Connection> connection_;
  std::thread puller_, keeper_, stopper_;
  std::vector<std::thread> workers_;  // written by Start only
  bool started_ = false;              // written by Start only

  std::mutex shutdown_mu_;  // one StopAndWait at a time
  bool stopped_ = false;    // guarded by shutdown_mu_

  std::mutex mu_;
  std::condition_variable puller_cv_;     // pull outcomes, room, stopping
  std::condition_variable work_cv_;       // ready messages, stopping
  std::condition_variable keeper_cv_;     // held messages changed, stopping
  std::condition_variable calls_cv_;      // a tracked call was answered
  HeldMessages held_;                     // guarded by mu_
  size_t pending_calls_ = 0;              // guarded by mu_
  bool stopping_ = false;                 // guarded by mu_
  bool released_ = false;                 // guarded by mu_: Shutdown gave back what was held
  SteadyTime renew_not_before_{};         // guarded by mu_: after a failed renewal
  bool renew_failing_ = false;            // guarded by mu_: said so in the log
  std::vector<AckReceipt> acks_waiting_;  // guarded by mu_
  bool ack_in_flight_ = false;            // guarded by mu_

  std::atomic<uint64_t> received_{0}, succeeded_{0}, retried_{0}, ack_errors_{0}, leases_lost_{0},
      ack_requests_{0};
};

}  // namespace txmq
