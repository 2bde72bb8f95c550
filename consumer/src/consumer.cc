// Threads started by Consumer::Start:
//   "txmq-io"    (inside the Connection) runs pull and ack completions;
//   puller       asks for messages while fewer than max_in_flight are held;
//   workers      (handler_threads) run handlers and send acks / nacks.
// Shared under mu_: work_, in_flight_, pending_acks_, stopping_. The puller
// (and Shutdown) wait on puller_cv_, handlers on work_cv_.
#include "txmq/consumer.h"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "protocol/src/connection.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "txmq/names.h"
#include "txmq/version.h"

namespace txmq {

namespace {
constexpr auto kPullMargin = std::chrono::seconds(10);  // beyond the long poll
constexpr auto kAckTimeout = std::chrono::seconds(10);
constexpr auto kShutdownAckWait = std::chrono::seconds(5);
}  // namespace

class Consumer::Impl {
 public:
  Impl(const ConsumerOptions& options, std::map<std::string, Handler> handlers)
      : options_(options), handlers_(std::move(handlers)), log_(Logger("consumer")) {}

  ~Impl() { Shutdown(); }

  Status Start() {
    auto connection = net::Connection::Open({.broker = options_.broker,
                                             .client_id = options_.client_id,
                                             .role = wire::Role::CONSUMER,
                                             .group = options_.group,
                                             .software = std::string("txmq-consumer ") + kVersion});
    if (!connection.ok()) return connection.status();
    connection_ = std::move(connection.value());
    puller_ = std::thread([this] {
      SetThreadName("txmq-pull");
      PullLoop();
    });
    for (int i = 0; i < options_.handler_threads; ++i) {
      workers_.emplace_back([this] {
        SetThreadName("txmq-handler");
        WorkLoop();
      });
    }
    return Status::OK();
  }

  void Shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || !connection_) return;
      stopping_ = true;
    }
    puller_cv_.notify_all();
    work_cv_.notify_all();
    puller_.join();
    for (auto& w : workers_) w.join();
    std::vector<Received> unstarted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      unstarted.assign(std::make_move_iterator(work_.begin()),
                       std::make_move_iterator(work_.end()));
      work_.clear();
      in_flight_ -= static_cast<int>(unstarted.size());
    }
    if (!unstarted.empty()) Release(unstarted);
    {
      std::unique_lock<std::mutex> lock(mu_);
      puller_cv_.wait_for(lock, kShutdownAckWait, [this] { return pending_acks_ == 0; });
    }
    connection_->Close();  // goodbye: the broker gives back whatever we still hold
    connection_.reset();
  }

  ConsumerStats stats() const {
    ConsumerStats s;
    s.received = received_;
    s.succeeded = succeeded_;
    s.retried = retried_;
    s.ack_errors = ack_errors_;
    return s;
  }

 private:
  void PullLoop() {
    auto backoff = std::chrono::milliseconds(100);
    while (true) {
      int want;
      {
        // Pull again once half a batch of room is free, not at the first
        // free slot: each pull then brings a useful amount while the
        // handlers still work through the rest (a pull per message would
        // cost a round trip per message).
        const int batch = std::min(options_.pull_batch, options_.max_in_flight);
        const int room_needed = std::max(1, batch / 2);
        std::unique_lock<std::mutex> lock(mu_);
        puller_cv_.wait(
            lock, [&] { return stopping_ || options_.max_in_flight - in_flight_ >= room_needed; });
        if (stopping_) return;
        want = std::min(options_.pull_batch, options_.max_in_flight - in_flight_);
      }
      auto request = connection_->NewRequest();
      auto pull = request.envelope().initPull();
      pull.setGroup(options_.group);
      auto topics = pull.initTopics(static_cast<unsigned>(handlers_.size()));
      unsigned i = 0;
      for (const auto& [topic, handler] : handlers_) topics.set(i++, topic);
      pull.setMaxMessages(static_cast<uint32_t>(want));
      pull.setWaitMs(static_cast<uint32_t>(options_.long_poll.count()));
      pull.setVisibilityTimeoutMs(static_cast<uint32_t>(options_.visibility_timeout.count()));
      pull.setStartFromLatest(options_.start_from_latest);

      auto outcome = std::make_shared<std::optional<Status>>();
      connection_->Call(
          std::move(request), options_.long_poll + kPullMargin,
          [this, outcome](Result<wire::Frame> reply) { OnPulled(std::move(reply), outcome); });
      std::unique_lock<std::mutex> lock(mu_);
      puller_cv_.wait(lock, [&] { return stopping_ || outcome->has_value(); });
      if (stopping_) return;
      if (outcome->value().ok()) {
        backoff = std::chrono::milliseconds(100);
        continue;
      }
      // Broker away or refusing: say so (once per backoff step), wait, retry.
      log_->warn("pull for group '{}' failed: {}; retrying in {} ms", options_.group,
                 outcome->value().ToString(), backoff.count());
      puller_cv_.wait_for(lock, backoff, [this] { return stopping_; });
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
  }

  // I/O thread.
  void OnPulled(Result<wire::Frame> reply, std::shared_ptr<std::optional<Status>> outcome) {
    std::vector<Received> got;
    if (reply.ok()) {
      for (auto d : reply->envelope().getPullOk().getMessages()) {
        got.push_back(wire::DeliveredFromWire(d));
      }
    }
    bool release = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      *outcome = reply.status();
      if (stopping_) {
        release = !got.empty();
      } else {
        received_ += got.size();
        in_flight_ += static_cast<int>(got.size());
        for (auto& m : got) work_.push_back(std::move(m));
      }
    }
    puller_cv_.notify_all();  // the pull's outcome
    work_cv_.notify_all();    // new work
    if (release) Release(got);
  }

  void WorkLoop() {
    while (true) {
      Received m;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [this] { return stopping_ || !work_.empty(); });
        if (stopping_) return;  // what is queued is given back by Shutdown
        m = std::move(work_.front());
        work_.pop_front();
      }
      ConsumeResult result = Run(m);
      Finish(m, result);
      {
        std::lock_guard<std::mutex> lock(mu_);
        --in_flight_;
      }
      puller_cv_.notify_one();  // room for more
    }
  }

  ConsumeResult Run(const Received& m) {
    auto it = handlers_.find(m.topic);
    if (it == handlers_.end()) return ConsumeResult::RetryLater();
    try {
      return it->second(m);
    } catch (const std::exception& e) {
      log_->warn("handler for '{}' threw on message {} (delivery {}): {}; will retry", m.topic,
                 m.id, m.delivery_count, e.what());
    } catch (...) {
      log_->warn("handler for '{}' threw on message {} (delivery {}); will retry", m.topic, m.id,
                 m.delivery_count);
    }
    return ConsumeResult::RetryLater();
  }

  static void AddReceipt(wire::Receipt::Builder r, const Received& m) {
    r.setTopic(m.topic);
    r.setQueue(m.queue);
    r.setOffset(m.offset);
    r.setRetryId(m.lease.retry_id);
    r.setLeaseId(m.lease.lease_id);
  }

  void Finish(const Received& m, const ConsumeResult& result) {
    auto request = connection_->NewRequest();
    if (result.kind() == ConsumeResult::Kind::kSuccess) {
      ++succeeded_;
      auto ack = request.envelope().initAck();
      ack.setGroup(options_.group);
      AddReceipt(ack.initReceipts(1)[0], m);
    } else {
      ++retried_;
      auto nack = request.envelope().initNack();
      nack.setGroup(options_.group);
      nack.setDelayMs(static_cast<uint32_t>(result.delay().count()));
      nack.setMaxReconsumeTimes(options_.max_reconsume_times);
      AddReceipt(nack.initReceipts(1)[0], m);
    }
    SendOutcome(std::move(request));
  }

  void Release(const std::vector<Received>& messages) {
    auto request = connection_->NewRequest();
    auto nack = request.envelope().initNack();
    nack.setGroup(options_.group);
    nack.setRelease(true);
    auto receipts = nack.initReceipts(static_cast<unsigned>(messages.size()));
    for (unsigned i = 0; i < messages.size(); ++i) AddReceipt(receipts[i], messages[i]);
    SendOutcome(std::move(request));
  }

  void SendOutcome(wire::OutFrame request) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++pending_acks_;
    }
    connection_->Call(std::move(request), kAckTimeout, [this](Result<wire::Frame> reply) {
      if (!reply.ok()) {
        ++ack_errors_;
        // The lease ends by itself; the message comes back (at-least-once).
        log_->warn("ack/nack for group '{}' failed: {}", options_.group, reply.status().ToString());
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        --pending_acks_;
      }
      puller_cv_.notify_all();  // Shutdown may wait for the last ack
    });
  }

  const ConsumerOptions options_;
  const std::map<std::string, Handler> handlers_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<net::Connection> connection_;
  std::thread puller_;
  std::vector<std::thread> workers_;

  std::mutex mu_;
  std::condition_variable puller_cv_;  // pull outcomes, room, acks, stopping
  std::condition_variable work_cv_;    // work for handlers, stopping
  std::deque<Received> work_;          // guarded by mu_
  int in_flight_ = 0;                  // guarded by mu_
  int pending_acks_ = 0;               // guarded by mu_
  bool stopping_ = false;              // guarded by mu_

  std::atomic<uint64_t> received_{0}, succeeded_{0}, retried_{0}, ack_errors_{0};
};

Consumer::Consumer(ConsumerOptions options) : options_(std::move(options)) {}

Consumer::~Consumer() { Shutdown(); }

Status Consumer::Subscribe(std::string topic, Handler handler) {
  if (impl_) return Status::FailedPrecondition("Subscribe must come before Start");
  if (Status s = ValidateNameOrSystem("topic", topic); !s.ok()) return s;
  if (!handler) return Status::InvalidArgument("handler for topic '" + topic + "' is empty");
  if (!handlers_.emplace(std::move(topic), std::move(handler)).second) {
    return Status::InvalidArgument("topic already has a handler");
  }
  return Status::OK();
}

Status Consumer::Start() {
  if (impl_) return Status::FailedPrecondition("consumer already started");
  if (Status s = ValidateName("consumer group", options_.group); !s.ok()) return s;
  if (handlers_.empty()) return Status::FailedPrecondition("subscribe to a topic before Start");
  auto positive = [](const char* field, long long v) {
    return v > 0 ? Status::OK()
                 : Status::InvalidArgument(std::string(field) + " must be positive (got " +
                                           std::to_string(v) + ")");
  };
  for (Status s : {positive("handler_threads", options_.handler_threads),
                   positive("max_in_flight", options_.max_in_flight),
                   positive("pull_batch", options_.pull_batch),
                   positive("long_poll", options_.long_poll.count()),
                   positive("visibility_timeout", options_.visibility_timeout.count())}) {
    if (!s.ok()) return s;
  }
  auto impl = std::make_unique<Impl>(options_, handlers_);
  if (Status s = impl->Start(); !s.ok()) return s;
  impl_ = std::move(impl);
  return Status::OK();
}

void Consumer::Shutdown() {
  if (impl_) impl_->Shutdown();
}

ConsumerStats Consumer::stats() const { return impl_ ? impl_->stats() : ConsumerStats{}; }

}  // namespace txmq
