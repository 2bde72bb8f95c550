// The consumer's side of lease upkeep (see held_messages.h): failures of
// keyed messages are reported with a lease extension that counts them, so
// the message stays here and retries before its key's later messages; and
// every held message that is not running has its lease renewed by the
// "txmq-lease" thread before it ends.
#include <algorithm>

#include "consumer/src/consumer_impl.h"
#include "txmq/names.h"

namespace txmq {

namespace {

// A failure the broker could not be told about is retried after this long.
constexpr auto kUnreportedRetry = std::chrono::seconds(1);

const char* LeaseStateName(wire::LeaseState s) {
  switch (s) {
    case wire::LeaseState::EXTENDED:
      return "extended";
    case wire::LeaseState::EXPIRED:
      return "expired";
    case wire::LeaseState::NOT_HOLDER:
      return "held by another consumer";
    case wire::LeaseState::DEAD_LETTERED:
      return "dead-lettered";
  }
  return "?";
}

}  // namespace

void Consumer::Impl::ReportFailure(HeldMessages::Id id, uint32_t source, const Received& m,
                                   std::chrono::milliseconds delay) {
  auto connection = ConnectionOf(source);
  auto request = connection->NewRequest();
  auto x = request.envelope().initExtendLease();
  x.setGroup(options_.group);
  AddReceipt(x.initReceipts(1)[0], m);
  x.setVisibilityTimeoutMs(static_cast<uint32_t>(options_.visibility_timeout.count()));
  x.setFailed(true);
  x.setDelayMs(static_cast<uint32_t>(delay.count()));
  x.setMaxReconsumeTimes(options_.max_reconsume_times);
  const SteadyTime sent_at = SteadyClock::now();
  Track(
      *connection, std::move(request), kAckTimeout,
      [this, id, source, delay, sent_at](Result<wire::Frame> reply) {
        std::optional<wire::LeaseState> state;
        uint32_t count = 0, retry_after = 0, valid_for = 0;
        if (reply.ok()) {
          auto results = reply->envelope().getExtendLeaseOk().getResults();
          if (results.size() == 1) {
            state = results[0].getState();
            count = results[0].getDeliveryCount();
            retry_after = results[0].getRetryAfterMs();
            valid_for = results[0].getValidForMs();
          }
        }
        bool done = false;
        std::optional<Received> nack;  // the broker cannot keep it: old behaviour
        {
          std::lock_guard<std::mutex> lock(mu_);
          HeldMessages::Entry* e = held_.Find(id);
          if (e == nullptr) return;
          const SteadyTime now = SteadyClock::now();
          if (state == wire::LeaseState::EXTENDED) {
            e->message.delivery_count = count;
            e->lease_until = sent_at + std::chrono::milliseconds(valid_for);
            held_.Backoff(id, now + std::chrono::milliseconds(retry_after));
          } else if (state == wire::LeaseState::DEAD_LETTERED) {
            log_->warn(
                "message {} ({}/{}/{}) of group '{}' failed delivery {}, past the redelivery "
                "limit: moved to '{}'; the next message of key '{}' runs now",
                e->message.id, e->message.topic, e->message.queue, e->message.offset,
                options_.group, count, DeadLetterTopic(options_.group), e->message.key);
            held_.Finish(id);
            done = true;
          } else if (state.has_value()) {
            ++leases_lost_;
            log_->warn(
                "message {} ({}/{}/{}) of group '{}' failed and its lease is {}: the broker "
                "delivers it again; the next message of key '{}' runs now",
                e->message.id, e->message.topic, e->message.queue, e->message.offset,
                options_.group, LeaseStateName(*state), e->message.key);
            held_.Finish(id);
            done = true;
          } else if (!reply.ok() && !reply.status().IsRetryable()) {
            // A broker that does not serve extendLease (an older version):
            // hand the failure to it as a nack; this message loses its place
            // in its key's order.
            log_->error(
                "broker cannot hold message {} for a retry in place ({}); nacking it, so key '{}' "
                "may run out of order",
                e->message.id, reply.status().ToString(), e->message.key);
            nack = e->message;
            held_.Finish(id);
            done = true;
          } else {
            // Unknown whether it was counted; keep it, try again in a while.
            log_->warn("could not report the failure of message {} to the broker: {}; retrying it",
                       e->message.id, reply.ok() ? "malformed reply" : reply.status().ToString());
            held_.Backoff(id, now + std::max<std::chrono::milliseconds>(delay, kUnreportedRetry));
          }
        }
        if (nack) SendOutcome(source, *nack, ConsumeResult::RetryLater(delay));
        if (done) {
          work_cv_.notify_all();
          puller_cv_.notify_one();
        }
        keeper_cv_.notify_all();
      });
}

// Renews what is held but not running before its lease ends (half a
// visibility timeout ahead), and wakes failed messages whose retry is due.
void Consumer::Impl::KeepLoop() {
  const auto visibility = options_.visibility_timeout;
  const auto margin = visibility / 2;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const SteadyTime now = SteadyClock::now();
    if (held_.WakeDue(now) > 0) work_cv_.notify_all();
    if (now >= renew_not_before_) {
      // A quarter more than needed, so renewals go out in batches.
      std::vector<HeldMessages::Id> ids = held_.TakeForRenewal(now + margin + visibility / 4);
      if (!ids.empty()) {
        // Each lease is renewed where it was granted.
        std::map<uint32_t, std::pair<std::vector<HeldMessages::Id>, std::vector<Received>>> by;
        for (HeldMessages::Id id : ids) {
          const HeldMessages::Entry* e = held_.Find(id);
          auto& [those, messages] = by[e->source];
          those.push_back(id);
          messages.push_back(e->message);
        }
        lock.unlock();
        for (const auto& [source, batch] : by) Renew(source, batch.first, batch.second);
        lock.lock();
        continue;
      }
    }
    SteadyTime next = held_.NextDue(margin);
    if (now < renew_not_before_) next = std::max(next, renew_not_before_);
    // Woken early by new messages, outcomes or stopping: look again.
    if (next == SteadyTime::max()) {
      keeper_cv_.wait(lock);
    } else {
      keeper_cv_.wait_until(lock, next);
    }
  }
}

void Consumer::Impl::Renew(uint32_t source, const std::vector<HeldMessages::Id>& ids,
                           const std::vector<Received>& messages) {
  auto connection = ConnectionOf(source);
  const auto timeout = std::clamp<std::chrono::milliseconds>(
      options_.visibility_timeout / 4, std::chrono::milliseconds(100), kAckTimeout);
  for (size_t start = 0; start < ids.size(); start += kMaxReceiptsPerRequest) {
    const size_t n = std::min(kMaxReceiptsPerRequest, ids.size() - start);
    std::vector<HeldMessages::Id> batch(ids.begin() + start, ids.begin() + start + n);
    auto request = connection->NewRequest();
    auto x = request.envelope().initExtendLease();
    x.setGroup(options_.group);
    x.setVisibilityTimeoutMs(static_cast<uint32_t>(options_.visibility_timeout.count()));
    auto receipts = x.initReceipts(static_cast<unsigned>(n));
    for (size_t i = 0; i < n; ++i) AddReceipt(receipts[i], messages[start + i]);
    const SteadyTime sent_at = SteadyClock::now();
    Track(*connection, std::move(request), timeout,
          [this, batch = std::move(batch), sent_at](Result<wire::Frame> reply) {
            OnRenewed(batch, sent_at, std::move(reply));
          });
  }
}

// I/O thread.
void Consumer::Impl::OnRenewed(const std::vector<HeldMessages::Id>& ids, SteadyTime sent_at,
                               Result<wire::Frame> reply) {
  bool lost_any = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::optional<capnp::List<wire::LeaseExtension>::Reader> results;
    if (reply.ok()) results = reply->envelope().getExtendLeaseOk().getResults();
    if (!results || results->size() != ids.size()) {
      // Said once until renewals work again: the keeper retries often.
      if (!renew_failing_) {
        log_->warn("renewing {} leases of group '{}' failed: {}; trying again", ids.size(),
                   options_.group, reply.ok() ? "malformed reply" : reply.status().ToString());
      }
      renew_failing_ = true;
      renew_not_before_ = SteadyClock::now() + options_.visibility_timeout / 8;
    } else {
      renew_failing_ = false;
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      HeldMessages::Entry* e = held_.Find(ids[i]);
      if (e == nullptr) continue;
      e->renewing = false;
      if (!results || results->size() != ids.size()) continue;
      auto r = (*results)[static_cast<unsigned>(i)];
      if (r.getState() == wire::LeaseState::EXTENDED) {
        e->lease_until = sent_at + std::chrono::milliseconds(r.getValidForMs());
        continue;
      }
      // Lost (broker restarted, or we were away too long): the broker
      // delivers it again, so it must not run here as well. A running
      // one learns it from its ack.
      if (e->state == HeldMessages::State::kRunning ||
          e->state == HeldMessages::State::kReporting) {
        continue;
      }
      log_->warn(
          "lost the lease of message {} ({}/{}/{}) of group '{}' before running it ({}); "
          "the broker delivers it again",
          e->message.id, e->message.topic, e->message.queue, e->message.offset, options_.group,
          LeaseStateName(r.getState()));
      ++leases_lost_;
      held_.Finish(ids[i]);
      lost_any = true;
    }
  }
  if (lost_any) {
    work_cv_.notify_all();
    puller_cv_.notify_one();
  }
  keeper_cv_.notify_all();
}

}  // namespace txmq
