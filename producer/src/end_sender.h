// Background ends (TransactionEndMode::kBackground): outcomes the local
// transactions decided, on their way to the broker without anyone waiting.
//
// An end leaves by one of two ways. A half message about to be sent takes
// the ends waiting (Take) and carries them (SendHalfRequest.ends); its
// reply answers each (Settle). An end no half took within kLinger is sent
// by the sender's thread as an endTransaction request of its own. An end
// whose answer does not come (timeout, broker away, a half refused) waits
// again and is resent after a backoff: ends are idempotent at the broker.
// An end is done when the broker answered it: OK, or a refusal that no
// resend changes (CONFLICT, NOT_FOUND), which is logged. Ends still waiting
// when the sender stops are dropped; the broker's check-back learns their
// outcome from the checker or the LocalStore, as for a producer that died.
//
// Thread: the constructor starts "txmq-ends", which owns nothing but the
// wait; the queue is guarded by mu_. Replies are handled on the
// connection's I/O thread.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "protocol/src/connection.h"
#include "protocol/src/util.h"
#include "txmq/producer.h"
#include "txmq/transaction_producer.h"

namespace txmq::producer {

struct QueuedEnd {
  std::string tx_id;
  TxState outcome = TxState::kCommit;  // kCommit or kRollback
  int attempts = 0;                    // sent this often without an answer
  SteadyTime ready_at{};               // not sent on its own before
};

// The broker's answer to one end: OK and the recorded state, or an error.
struct EndAnswer {
  std::string tx_id;
  Status status;
  TxState recorded = TxState::kUnknown;
};

class EndSender {
 public:
  // How long an end waits for a half to carry it before it goes alone.
  static constexpr std::chrono::milliseconds kLinger{2};
  // Own endTransaction requests in flight at once.
  static constexpr size_t kMaxInFlight = 256;

  // `connection` must outlive the sender's replies: stop the sender, then
  // close the connection, then destroy the sender.
  EndSender(net::Connection& connection, const ProducerOptions& options);
  ~EndSender();
  EndSender(const EndSender&) = delete;
  EndSender& operator=(const EndSender&) = delete;

  void Add(std::string tx_id, TxState outcome);
  // Up to wire::kMaxEndsPerHalf waiting ends, for a half about to be sent.
  // Each must come back through Settle.
  std::vector<QueuedEnd> Take();
  // The request that carried `ends` was answered with `answers` (matched by
  // transaction id; a missing answer counts as not delivered), or failed.
  void Settle(std::vector<QueuedEnd> ends, const std::vector<EndAnswer>& answers);

  // The broker answered a half without a word about the ends it carried
  // (a txmqd older than SendHalfRequest.ends): from now on ends go alone.
  void StopCarrying();

  // Waits until no end is waiting or in flight; TIMEOUT with the count.
  Status Flush(std::chrono::milliseconds timeout);
  // Stops the thread; logs and drops the ends still waiting. Idempotent.
  void Stop();

 private:
  void Run();
  void SendAlone(QueuedEnd end);
  void Requeue(QueuedEnd end, const Status& why);  // mu_ held

  net::Connection& connection_;
  const ProducerOptions options_;

  std::mutex mu_;
  std::condition_variable wake_;     // the thread: ends waiting, or stop
  std::condition_variable settled_;  // Flush: something was answered
  std::deque<QueuedEnd> waiting_;    // guarded by mu_
  size_t in_flight_ = 0;             // guarded by mu_: sent alone or carried
  size_t own_in_flight_ = 0;         // guarded by mu_: sent alone
  int flushing_ = 0;                 // guarded by mu_: Flush calls; no linger then
  bool stop_ = false;                // guarded by mu_
  bool carry_ = true;                // guarded by mu_: halves may carry ends
  std::thread thread_;
};

}  // namespace txmq::producer
