// Threads started by Consumer::Start:
//   "txmq-io"     (inside each Connection) runs the completions of pulls,
//                 acks, nacks and lease extensions;
//   "txmq-pull"   one per source (the connection given, and in a cluster one
//                 per other broker group serving the topics): asks it for
//                 messages while fewer than max_in_flight are held;
//   "txmq-route"  asks where the topics' queues are every few seconds and
//                 adds or moves sources (consumer_sources.cc);
//   "txmq-lease"  renews the leases of held messages that are not running
//                 and makes failed keyed messages ready when their retry is due;
//   "txmq-handler" (handler_threads) run handlers and send their outcomes.
// Shared under mu_: held_ (every message this consumer holds a lease on,
// see held_messages.h), sources_ (the list, each one's connection and
// acks), pending_calls_, stopping_, released_, refresh_soon_,
// renew_not_before_, renew_failing_. Waiting: the pullers on puller_cv_,
// handlers on work_cv_, the lease keeper on keeper_cv_, the route thread on
// router_cv_, Shutdown on calls_cv_. A stop asked for on a handler thread
// runs on "txmq-stop".
#include "txmq/consumer.h"

#include <algorithm>

#include "consumer/src/consumer_impl.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "txmq/names.h"
#include "txmq/version.h"

namespace txmq {

namespace {
constexpr auto kPullMargin = std::chrono::seconds(10);  // beyond the long poll
constexpr auto kShutdownAckWait = std::chrono::seconds(5);
}  // namespace

Consumer::Impl::Impl(const ConsumerOptions& options, std::map<std::string, Handler> handlers)
    : options_(options), handlers_(std::move(handlers)), log_(Logger("consumer")) {}

Consumer::Impl::~Impl() {
  Shutdown();
  if (stopper_.joinable()) stopper_.join();
}

Status Consumer::Impl::Start() {
  auto keys =
      curve::LoadClientKeys(options_.curve_key, options_.server_key, "curve_key", "server_key");
  if (!keys.ok()) return keys.status();
  home_options_ = {.broker = options_.broker,
                   .client_id = options_.client_id,
                   .role = wire::Role::CONSUMER,
                   .group = options_.group,
                   .software = std::string("txmq-consumer ") + kVersion,
                   .curve = *keys};
  auto connection = net::Connection::Open(home_options_);
  if (!connection.ok()) return connection.status();
  {
    std::lock_guard<std::mutex> lock(mu_);
    AddSource("", options_.broker, std::move(connection.value()));
  }
  router_ = std::thread([this] {
    SetThreadName("txmq-route");
    RouteLoop();
  });
  keeper_ = std::thread([this] {
    SetThreadName("txmq-lease");
    KeepLoop();
  });
  for (int i = 0; i < options_.handler_threads; ++i) {
    workers_.emplace_back([this] {
      SetThreadName("txmq-handler");
      WorkLoop();
    });
  }
  started_ = true;
  return Status::OK();
}

void Consumer::Impl::Shutdown() {
  if (OnHandlerThread()) {
    // A handler cannot wait for itself: stop on another thread, which
    // waits for this handler to return; the destructor waits for that.
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    stopper_ = std::thread([this] {
      SetThreadName("txmq-stop");
      StopAndWait();
    });
    return;
  }
  StopAndWait();
}

ConsumerStats Consumer::Impl::stats() const {
  ConsumerStats s;
  s.received = received_;
  s.succeeded = succeeded_;
  s.retried = retried_;
  s.ack_errors = ack_errors_;
  s.leases_lost = leases_lost_;
  s.ack_requests = ack_requests_;
  return s;
}

bool Consumer::Impl::OnHandlerThread() const {
  const auto self = std::this_thread::get_id();
  return std::any_of(workers_.begin(), workers_.end(),
                     [&](const std::thread& t) { return t.get_id() == self; });
}

void Consumer::Impl::StopAndWait() {
  std::lock_guard<std::mutex> serial(shutdown_mu_);
  if (stopped_ || !started_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  puller_cv_.notify_all();
  work_cv_.notify_all();
  keeper_cv_.notify_all();
  router_cv_.notify_all();
  router_.join();  // sources_ changes no more
  for (auto& source : sources_) source->puller.join();
  keeper_.join();
  for (auto& w : workers_) w.join();

  // One bound for the broker's answers to outcomes and to the give-back.
  const SteadyTime answers_by = SteadyClock::now() + kShutdownAckWait;
  std::vector<HeldMessages::Idle> idle;
  {
    std::unique_lock<std::mutex> lock(mu_);
    calls_cv_.wait_until(lock, answers_by, [this] { return pending_calls_ == 0; });
    idle = held_.TakeIdle();
    released_ = true;  // from now on a late pull reply gives back what it brings
  }
  // Each source's in arrival order, so each key's order is kept.
  for (uint32_t source = 0; source < sources_.size(); ++source) {
    std::vector<Received> back;
    for (auto& held : idle) {
      if (held.source == source) back.push_back(std::move(held.message));
    }
    if (!back.empty()) Release(source, back);
  }
  std::vector<std::pair<uint32_t, std::vector<Received>>> late;
  {
    std::lock_guard<std::mutex> lock(mu_);
    held_given_back_ = true;
    late.swap(late_);
  }
  for (const auto& [source, messages] : late) Release(source, messages);
  size_t unanswered, unreported;
  {
    std::unique_lock<std::mutex> lock(mu_);
    calls_cv_.wait_until(lock, answers_by, [this] { return pending_calls_ == 0; });
    unanswered = pending_calls_;
    unreported = held_.size();
  }
  if (unanswered != 0 || unreported != 0) {
    log_->warn(
        "consumer group '{}' shutting down with {} calls to the broker unanswered and {} "
        "failed messages not reported: the broker gives them back on goodbye or delivers them "
        "again when their leases end",
        options_.group, unanswered, unreported);
  }
  // Goodbye; pending calls complete UNAVAILABLE before each returns.
  for (uint32_t source = 0; source < sources_.size(); ++source) ConnectionOf(source)->Close();
  stopped_ = true;
}

void Consumer::Impl::PullLoop(uint32_t source) {
  ConsumerSource* from;  // stays: sources_ only grows, and holds pointers
  {
    std::lock_guard<std::mutex> lock(mu_);
    from = sources_[source].get();
  }
  const std::string where = from->group.empty() ? "" : " from broker group " + from->group;
  auto backoff = std::chrono::milliseconds(100);
  while (true) {
    int want;
    std::shared_ptr<net::Connection> connection;
    {
      // Pull again once half a batch of room is free, not at the first
      // free slot: each pull then brings a useful amount while the
      // handlers still work through the rest (a pull per message would
      // cost a round trip per message).
      const int batch = std::min(options_.pull_batch, options_.max_in_flight);
      const int room_needed = std::max(1, batch / 2);
      std::unique_lock<std::mutex> lock(mu_);
      puller_cv_.wait(lock, [&] { return stopping_ || Room() >= room_needed; });
      if (stopping_) return;
      // Each source pulls on its own: with several, up to a batch per
      // source more than max_in_flight may arrive at once.
      want = std::min(options_.pull_batch, Room());
      connection = from->connection;
    }
    auto request = connection->NewRequest();
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
    connection->Call(std::move(request), options_.long_poll + kPullMargin,
                     [this, source, outcome](Result<wire::Frame> reply) {
                       OnPulled(source, std::move(reply), outcome);
                     });
    connection.reset();  // the route thread may replace it meanwhile
    std::unique_lock<std::mutex> lock(mu_);
    puller_cv_.wait(lock, [&] { return stopping_ || outcome->has_value(); });
    if (stopping_) return;
    if (outcome->value().ok()) {
      backoff = std::chrono::milliseconds(100);
      continue;
    }
    // Broker away or refusing: say so (once per backoff step), wait, retry.
    // Another group's leader may have moved: the routes say where to.
    log_->warn("pull for group '{}'{} failed: {}; retrying in {} ms", options_.group, where,
               outcome->value().ToString(), backoff.count());
    if (source != 0) {
      refresh_soon_ = true;
      router_cv_.notify_all();
    }
    puller_cv_.wait_for(lock, backoff, [this] { return stopping_; });
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

int Consumer::Impl::Room() const { return options_.max_in_flight - static_cast<int>(held_.size()); }

// I/O thread.
void Consumer::Impl::OnPulled(uint32_t source, Result<wire::Frame> reply,
                              std::shared_ptr<std::optional<Status>> outcome) {
  std::vector<Received> got;
  if (reply.ok()) {
    for (auto d : reply->envelope().getPullOk().getMessages()) {
      got.push_back(wire::DeliveredFromWire(d));
    }
  }
  bool give_back = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    *outcome = reply.status();
    if (released_ && !held_given_back_) {
      if (!got.empty()) late_.emplace_back(source, std::move(got));  // Shutdown gives them back
    } else if (released_) {
      give_back = !got.empty();
    } else {
      // Also while stopping: Shutdown gives them back after the earlier
      // messages of their keys, which keeps each key's order.
      received_ += got.size();
      const SteadyTime lease_until = SteadyClock::now() + options_.visibility_timeout;
      for (auto& m : got) held_.Add(std::move(m), lease_until, source);
    }
  }
  puller_cv_.notify_all();  // the pull's outcome
  work_cv_.notify_all();    // new work
  keeper_cv_.notify_all();  // new leases to look after
  if (give_back) Release(source, got);
}

void Consumer::Impl::WorkLoop() {
  while (true) {
    HeldMessages::Id id;
    uint32_t source;
    const Received* m;  // stays valid while it runs: only this thread ends it
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [this] { return stopping_ || held_.HasReady(); });
      if (stopping_) return;  // what is held is given back by Shutdown
      auto taken = held_.TakeReady();
      if (!taken) continue;
      id = *taken;
      m = &held_.Find(id)->message;
      source = held_.Find(id)->source;
    }
    ConsumeResult result = Run(*m);
    if (result.kind() == ConsumeResult::Kind::kSuccess) {
      ++succeeded_;
      SendOutcome(source, *m, result);
      Done(id);
    } else if (m->key.empty()) {
      ++retried_;
      SendOutcome(source, *m, result);  // a nack: the broker redelivers it after the delay
      Done(id);
    } else {
      // Keyed: retried here, before the key's later messages (see consumer.h).
      ++retried_;
      {
        std::lock_guard<std::mutex> lock(mu_);
        held_.Find(id)->state = HeldMessages::State::kReporting;
      }
      ReportFailure(id, source, *m, result.delay());
    }
  }
}

ConsumeResult Consumer::Impl::Run(const Received& m) {
  auto it = handlers_.find(m.topic);
  if (it == handlers_.end()) return ConsumeResult::RetryLater();
  try {
    return it->second(m);
  } catch (const std::exception& e) {
    log_->warn("handler for '{}' threw on message {} (delivery {}): {}; will retry", m.topic, m.id,
               m.delivery_count, e.what());
  } catch (...) {
    log_->warn("handler for '{}' threw on message {} (delivery {}); will retry", m.topic, m.id,
               m.delivery_count);
  }
  return ConsumeResult::RetryLater();
}

void Consumer::Impl::Done(HeldMessages::Id id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    held_.Finish(id);
  }
  work_cv_.notify_all();
  puller_cv_.notify_one();  // room for more
}

void Consumer::Impl::SendOutcome(uint32_t source, const Received& m, const ConsumeResult& result) {
  if (result.kind() == ConsumeResult::Kind::kSuccess) return QueueAck(source, m);
  auto connection = ConnectionOf(source);
  auto request = connection->NewRequest();
  auto nack = request.envelope().initNack();
  nack.setGroup(options_.group);
  nack.setDelayMs(static_cast<uint32_t>(result.delay().count()));
  nack.setMaxReconsumeTimes(options_.max_reconsume_times);
  AddReceipt(nack.initReceipts(1)[0], m);
  Track(*connection, std::move(request), kAckTimeout, [this](Result<wire::Frame> reply) {
    if (!reply.ok()) {
      ++ack_errors_;
      // The lease ends by itself; the message comes back (at-least-once).
      log_->warn("nack for group '{}' failed: {}", options_.group, reply.status().ToString());
    }
  });
}

void Consumer::Impl::QueueAck(uint32_t source, const Received& m) {
  std::vector<AckReceipt> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ConsumerSource& to = *sources_[source];
    to.acks_waiting.push_back({m.topic, m.queue, m.offset, m.lease.retry_id, m.lease.lease_id});
    if (to.ack_in_flight) return;  // goes with the next request
    to.ack_in_flight = true;
    batch.swap(to.acks_waiting);
  }
  SendAcks(source, std::move(batch));
}

void Consumer::Impl::SendAcks(uint32_t source, std::vector<AckReceipt> batch) {
  std::shared_ptr<net::Connection> connection;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ConsumerSource& to = *sources_[source];
    // More than one request holds goes back to wait for the next.
    if (batch.size() > kMaxReceiptsPerRequest) {
      to.acks_waiting.insert(to.acks_waiting.begin(), batch.begin() + kMaxReceiptsPerRequest,
                             batch.end());
      batch.resize(kMaxReceiptsPerRequest);
    }
    connection = to.connection;
  }
  auto request = connection->NewRequest();
  auto ack = request.envelope().initAck();
  ack.setGroup(options_.group);
  auto receipts = ack.initReceipts(static_cast<unsigned>(batch.size()));
  for (unsigned i = 0; i < batch.size(); ++i) {
    receipts[i].setTopic(batch[i].topic);
    receipts[i].setQueue(batch[i].queue);
    receipts[i].setOffset(batch[i].offset);
    receipts[i].setRetryId(batch[i].retry_id);
    receipts[i].setLeaseId(batch[i].lease_id);
  }
  ++ack_requests_;
  Track(*connection, std::move(request), kAckTimeout,
        [this, source, count = batch.size()](Result<wire::Frame> reply) {
          OnAcked(source, count, std::move(reply));
        });
}

void Consumer::Impl::OnAcked(uint32_t source, size_t count, Result<wire::Frame> reply) {
  if (!reply.ok()) {
    ack_errors_ += count;
    // The leases end by themselves; the messages come back (at-least-once).
    log_->warn("ack of {} messages for group '{}' failed: {}", count, options_.group,
               reply.status().ToString());
  }
  // Runs inside Track's completion, before it counts this call answered,
  // so Shutdown also waits for the acks that were waiting.
  std::vector<AckReceipt> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ConsumerSource& to = *sources_[source];
    if (to.acks_waiting.empty()) {
      to.ack_in_flight = false;
      return;
    }
    batch.swap(to.acks_waiting);
  }
  SendAcks(source, std::move(batch));
}

void Consumer::Impl::Release(uint32_t source, const std::vector<Received>& messages) {
  auto connection = ConnectionOf(source);
  for (size_t start = 0; start < messages.size(); start += kMaxReceiptsPerRequest) {
    const size_t n = std::min(kMaxReceiptsPerRequest, messages.size() - start);
    auto request = connection->NewRequest();
    auto nack = request.envelope().initNack();
    nack.setGroup(options_.group);
    nack.setRelease(true);
    auto receipts = nack.initReceipts(static_cast<unsigned>(n));
    for (size_t i = 0; i < n; ++i) AddReceipt(receipts[i], messages[start + i]);
    Track(*connection, std::move(request), kAckTimeout, [this, n](Result<wire::Frame> reply) {
      if (!reply.ok()) {
        log_->warn(
            "giving back {} messages of group '{}' failed: {}; they come back when "
            "their leases end",
            n, options_.group, reply.status().ToString());
      }
    });
  }
}

std::shared_ptr<net::Connection> Consumer::Impl::ConnectionOf(uint32_t source) {
  std::lock_guard<std::mutex> lock(mu_);
  return sources_[source]->connection;
}

void Consumer::Impl::Track(net::Connection& connection, wire::OutFrame request,
                           std::chrono::milliseconds timeout,
                           std::function<void(Result<wire::Frame>)> on_reply) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++pending_calls_;
  }
  connection.Call(std::move(request), timeout,
                  [this, on_reply = std::move(on_reply)](Result<wire::Frame> reply) {
                    on_reply(std::move(reply));
                    {
                      std::lock_guard<std::mutex> lock(mu_);
                      --pending_calls_;
                    }
                    calls_cv_.notify_all();
                  });
}

Consumer::Consumer(ConsumerOptions options) : options_(std::move(options)) {}

Consumer::~Consumer() { Shutdown(); }

Status Consumer::Subscribe(std::string topic, Handler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shut_down_) return Status::FailedPrecondition("consumer was shut down; make a new one");
  if (impl_) return Status::FailedPrecondition("Subscribe must come before Start");
  if (Status s = ValidateNameOrSystem("topic", topic); !s.ok()) return s;
  if (!handler) return Status::InvalidArgument("handler for topic '" + topic + "' is empty");
  if (!handlers_.emplace(std::move(topic), std::move(handler)).second) {
    return Status::InvalidArgument("topic already has a handler");
  }
  return Status::OK();
}

Status Consumer::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (shut_down_) return Status::FailedPrecondition("consumer was shut down; make a new one");
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
  Impl* impl;
  {
    // Not held while stopping: a handler may call stats() or Shutdown().
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
    impl = impl_.get();
  }
  if (impl != nullptr) impl->Shutdown();
}

ConsumerStats Consumer::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return impl_ ? impl_->stats() : ConsumerStats{};
}

}  // namespace txmq
