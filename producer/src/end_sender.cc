#include "producer/src/end_sender.h"

#include <algorithm>

#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::producer {

namespace {

// Resends back off from 100 ms to 5 s: a broker that is away is asked
// again soon after it is back, without a storm while it is not.
std::chrono::milliseconds Backoff(int attempts) {
  const int shift = std::min(attempts, 6);
  return std::min(std::chrono::milliseconds(100) * (1 << shift), std::chrono::milliseconds(5000));
}

const char* Name(TxState s) { return s == TxState::kCommit ? "COMMIT" : "ROLLBACK"; }

}  // namespace

EndSender::EndSender(net::Connection& connection, const ProducerOptions& options)
    : connection_(connection), options_(options), thread_([this] { Run(); }) {}

EndSender::~EndSender() { Stop(); }

void EndSender::Add(std::string tx_id, TxState outcome) {
  std::lock_guard<std::mutex> lock(mu_);
  waiting_.push_back({std::move(tx_id), outcome, 0, SteadyClock::now() + kLinger});
  wake_.notify_one();
}

std::vector<QueuedEnd> EndSender::Take() {
  std::vector<QueuedEnd> taken;
  std::lock_guard<std::mutex> lock(mu_);
  // Also ends backing off: the half goes to the broker anyway.
  while (carry_ && !waiting_.empty() && taken.size() < wire::kMaxEndsPerHalf) {
    taken.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  in_flight_ += taken.size();
  return taken;
}

void EndSender::Settle(std::vector<QueuedEnd> ends, const std::vector<EndAnswer>& answers) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < ends.size(); ++i) {
    QueuedEnd& end = ends[i];
    --in_flight_;
    const EndAnswer* answer = nullptr;
    if (i < answers.size() && answers[i].tx_id == end.tx_id) answer = &answers[i];
    if (answer == nullptr) {
      Requeue(std::move(end), Status::Unavailable("no answer"));
      continue;
    }
    const Status& s = answer->status;
    if (s.ok()) {
      if (answer->recorded != end.outcome) {  // cannot happen: an end either wins or conflicts
        Logger("producer")
            ->error("transaction {}: sent {}, broker recorded {}", end.tx_id, Name(end.outcome),
                    Name(answer->recorded));
      }
    } else if (s.IsRetryable()) {
      Requeue(std::move(end), s);
    } else if (s.code() == StatusCode::kConflict) {
      Logger("producer")
          ->error(
              "transaction {}: the local transaction decided {}, but the broker had already "
              "decided otherwise (a check-back answer or an operator): {}",
              end.tx_id, Name(end.outcome), s.message());
    } else {
      // NOT_FOUND: the broker forgot it (resolved long ago); anything else
      // would be refused again the same way.
      Logger("producer")
          ->warn("transaction {}: {} not recorded: {}", end.tx_id, Name(end.outcome), s.ToString());
    }
  }
  settled_.notify_all();
  wake_.notify_one();
}

void EndSender::Requeue(QueuedEnd end, const Status& why) {
  ++end.attempts;
  if (end.attempts == 3 || end.attempts % 20 == 0) {
    Logger("producer")
        ->warn("transaction {}: {} not confirmed after {} attempts ({}); retrying", end.tx_id,
               Name(end.outcome), end.attempts, why.ToString());
  }
  end.ready_at = SteadyClock::now() + Backoff(end.attempts);
  waiting_.push_back(std::move(end));
}

void EndSender::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    const SteadyTime now = SteadyClock::now();
    SteadyTime next = SteadyTime::max();
    std::vector<QueuedEnd> due;
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      const bool ready = it->ready_at <= now || (flushing_ > 0 && it->attempts == 0);
      if (ready && own_in_flight_ + due.size() < kMaxInFlight) {
        due.push_back(std::move(*it));
        it = waiting_.erase(it);
      } else {
        if (!ready) next = std::min(next, it->ready_at);
        ++it;
      }
    }
    if (due.empty()) {
      if (next == SteadyTime::max()) {
        wake_.wait(lock);
      } else {
        wake_.wait_until(lock, next);
      }
      continue;
    }
    in_flight_ += due.size();
    own_in_flight_ += due.size();
    lock.unlock();
    for (QueuedEnd& end : due) SendAlone(std::move(end));
    lock.lock();
  }
}

void EndSender::SendAlone(QueuedEnd end) {
  auto request = connection_.NewRequest();
  auto e = request.envelope().initEndTransaction();
  e.setTransactionId(end.tx_id);
  e.setOutcome(end.outcome == TxState::kCommit ? wire::TxOutcome::COMMIT
                                               : wire::TxOutcome::ROLLBACK);
  connection_.Call(std::move(request), options_.send_timeout,
                   [this, end = std::move(end)](Result<wire::Frame> reply) mutable {
                     EndAnswer answer{end.tx_id, reply.status()};
                     if (reply.ok()) {
                       answer.recorded = reply->envelope().getEndTransactionOk().getState() ==
                                                 wire::TxState::COMMITTED
                                             ? TxState::kCommit
                                             : TxState::kRollback;
                     }
                     {
                       std::lock_guard<std::mutex> lock(mu_);
                       --own_in_flight_;
                     }
                     std::vector<QueuedEnd> ends;
                     ends.push_back(std::move(end));
                     Settle(std::move(ends), {answer});
                   });
}

void EndSender::StopCarrying() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!carry_) return;
  carry_ = false;
  Logger("producer")
      ->warn(
          "the broker does not answer ends carried on a half message (an older txmqd?); "
          "sending each end on its own");
}

Status EndSender::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  ++flushing_;
  wake_.notify_one();
  const bool done = settled_.wait_for(
      lock, timeout, [this] { return stop_ || (waiting_.empty() && in_flight_ == 0); });
  --flushing_;
  const size_t left = waiting_.size() + in_flight_;
  if (done && left == 0) return Status::OK();
  return Status::Timeout(std::to_string(left) +
                         " transaction ends not confirmed by the broker yet; if they never "
                         "arrive, its check-back resolves those transactions");
}

void EndSender::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
    if (!waiting_.empty() || in_flight_ > 0) {
      Logger("producer")
          ->warn(
              "{} transaction ends not confirmed at shutdown; the broker's check-back resolves "
              "those transactions",
              waiting_.size() + in_flight_);
    }
    wake_.notify_one();
    settled_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace txmq::producer
