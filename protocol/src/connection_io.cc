// The I/O thread's loop of a Connection ("txmq-io", connection_impl.h):
// what callers queued goes out, replies and broker calls come in, and
// calls past their deadline fail.
#include "protocol/src/connection_impl.h"

namespace txmq::net {

namespace {

// Calls the broker starts (as opposed to replies to ours).
bool IsBrokerCall(wire::Envelope::Which which) {
  return which == wire::Envelope::CHECK_TRANSACTION;
}

}  // namespace

void Connection::Impl::TakeInbox() {
  std::deque<Outgoing> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(inbox_);
  }
  for (auto& out : batch) Register(std::move(out));
}

void Connection::Impl::Register(Outgoing out) {
  // A link libzmq gave up on (our key refused, CURVE on one side only)
  // never carries anything: say why at once.
  if (const LinkState::Link link = link_.state(); LinkState::IsFinal(link)) {
    if (out.done) out.done(LinkStatus(link));
    return;
  }
  Track(out);
  unsent_.push_back(std::move(out));
}

void Connection::Impl::Track(Outgoing& out) {
  if (!out.expects_reply) return;
  deadlines_.emplace(out.deadline, out.request_id);
  Pending& p = pending_[out.request_id];
  p = Pending{std::move(out.done), out.deadline, false, zmq::message_t(), out.hello};
  p.bytes.copy(out.bytes);  // a reference, not a copy, above ZeroMQ's 33-byte inline size
}

void Connection::Impl::SendUnsent() {
  if (SteadyClock::now() < picker_.hold_until()) return;  // backing off
  while (!unsent_.empty()) {
    Outgoing& out = unsent_.front();
    auto it = out.expects_reply ? pending_.find(out.request_id) : pending_.end();
    const bool is_call = it != pending_.end();
    // A call that already timed out, or a reply nobody waits for any more.
    if ((out.expects_reply && !is_call) || out.deadline < SteadyClock::now()) {
      unsent_.pop_front();
      continue;
    }
    zmq::send_result_t sent;
    try {
      sent = socket_->send(out.bytes, zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      log_->error("send to {} failed: {}", picker_.current(), e.what());
      Complete(out.request_id, Status::Unavailable(std::string("send failed: ") + e.what()));
      unsent_.pop_front();
      continue;
    }
    if (!sent) return;  // not connected yet or queue full: try again later
    if (is_call) it->second.sent = true;
    unsent_.pop_front();
  }
}

void Connection::Impl::Complete(uint64_t request_id, Result<wire::Frame> result) {
  auto it = pending_.find(request_id);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  deadlines_.erase({p.deadline, request_id});
  if (p.done) p.done(std::move(result));
}

void Connection::Impl::ReceiveAll() {
  while (true) {
    zmq::message_t msg;
    zmq::recv_result_t got;
    try {
      got = socket_->recv(msg, zmq::recv_flags::dontwait);
    } catch (const zmq::error_t& e) {
      log_->error("receive from {} failed: {}", picker_.current(), e.what());
      return;
    }
    if (!got) return;
    last_heard_ns_ = SteadyClock::now().time_since_epoch().count();
    auto frame = wire::DecodeFrame(std::move(msg), options_.limits);
    if (!frame.ok()) {
      log_->warn("dropping undecodable frame from {}: {}", picker_.current(),
                 frame.status().ToString());
      continue;
    }
    try {
      auto env = frame->envelope();
      const uint64_t id = env.getRequestId();
      if (IsBrokerCall(env.which())) {
        if (on_call_) on_call_(std::move(frame.value()));
        continue;
      }
      if (!pending_.count(id)) continue;  // answered after its timeout
      Status status = wire::StatusOf(env);
      if (status.code() == StatusCode::kNotLeader && options_.follow_leader) {
        OnNotLeader(wire::LeaderUrlOf(env), status);
        continue;
      }
      if (status.code() == StatusCode::kUnavailable && MayMoveOn()) {
        // Stepping down, or its storage failed: the group's next leader
        // (or a node that names it) is elsewhere. Moved after the rest of
        // this burst is read, so every answer it sent counts.
        silent_ = "answered " + status.ToString();
      } else if (status.code() != StatusCode::kNotLeader) {
        picker_.OnServed();
        last_not_leader_ = Status::OK();
      }
      if (status.ok()) {
        Complete(id, std::move(frame.value()));
      } else {
        Complete(id, status);
      }
    } catch (const kj::Exception& e) {
      log_->warn("dropping malformed frame from {}: {}", picker_.current(),
                 e.getDescription().cStr());
    }
  }
}

void Connection::Impl::ExpireDeadlines(SteadyTime now) {
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    uint64_t id = deadlines_.begin()->second;
    auto it = pending_.find(id);
    bool sent = it != pending_.end() && it->second.sent;
    if (sent) {
      Complete(id, Status::Timeout("no reply from broker " + picker_.current() + " in time"));
      // A paused or hung broker keeps its TCP connection: without this,
      // the client waits for ZeroMQ's heartbeat to drop the link.
      if (MayMoveOn()) silent_ = "left a call unanswered until its deadline";
    } else if (!last_not_leader_.ok()) {
      Complete(id, Status(StatusCode::kNotLeader,
                          last_not_leader_.message() + "; no leader answered before the deadline"));
    } else if (const auto link = link_.state();
               link == LinkState::Link::kRefused || link == LinkState::Link::kHandshakeFailed) {
      Complete(id, LinkStatus(link));
    } else {
      Complete(id, Status::Unavailable("broker " + picker_.current() +
                                       " not reachable before the deadline"));
    }
  }
}

void Connection::Impl::Run() {
  // The interval may shorten once the broker's hello reply arrives, so the
  // next beat is derived from the last one on every pass.
  SteadyTime last_heartbeat = SteadyClock::now();
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) break;
    }
    TakeInbox();
    SendUnsent();
    SteadyTime now = SteadyClock::now();
    if (now >= last_heartbeat + HeartbeatInterval()) {
      QueueHeartbeat();
      SendUnsent();
      last_heartbeat = now;
    }
    SteadyTime wake_at = last_heartbeat + HeartbeatInterval();
    if (!deadlines_.empty()) wake_at = std::min(wake_at, deadlines_.begin()->first);
    // Rounded up: a deadline 0.3 ms away must not become a busy poll(0).
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(wake_at - now).count();
    if (!unsent_.empty()) wait = std::min<long>(wait, 10);  // retry a blocked send soon
    {
      // A request enqueued from here on finds io_polling_ set and wakes us.
      std::lock_guard<std::mutex> lock(mu_);
      if (!inbox_.empty()) wait = 0;
      io_polling_ = true;
    }
    zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, wake_.fd(), ZMQ_POLLIN, 0},
                               {monitor_ ? monitor_->handle() : nullptr, -1, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, monitor_ ? 3 : 2, std::chrono::milliseconds(std::max<long>(wait, 0)));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) log_->error("poll failed: {}", e.what());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      io_polling_ = io_woken_ = false;
    }
    if (items[1].revents & ZMQ_POLLIN) wake_.Drain();
    if (items[0].revents & ZMQ_POLLIN) ReceiveAll();
    if (monitor_ && (items[2].revents & ZMQ_POLLIN)) OnMonitorEvent();
    if (options_.follow_leader && (monitor_ || unusable_socket_)) CheckLink(SteadyClock::now());
    ExpireDeadlines(SteadyClock::now());
    if (!silent_.empty()) LeaveSilentBroker(SteadyClock::now());
  }
  // Shutting down: everything still pending learns it now.
  TakeInbox();
  std::vector<uint64_t> ids;
  for (auto& [id, p] : pending_) ids.push_back(id);
  for (uint64_t id : ids) {
    Complete(id, Status::Unavailable("connection to " + options_.broker + " is closed"));
  }
  CloseSocket();
}

}  // namespace txmq::net
