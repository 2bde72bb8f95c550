// Thread "txmq-io" (started in Connection::Open) owns: socket_, pending_,
// deadlines_, unsent_, the heartbeat timer, picker_ (which broker of a
// group), link_since_, silent_. Shared with callers, under mu_:
// inbox_ (requests to send) and closing_; under url_mu_: current_url_.
// link_ (what the socket monitor last said about the TCP connection)
// guards itself.
#include "protocol/src/connection.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "protocol/src/broker_list.h"
#include "protocol/src/broker_picker.h"
#include "protocol/src/client_socket.h"
#include "protocol/src/event_fd.h"
#include "protocol/src/link_state.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::net {

namespace {

// How long a link may stay unconnected before a client with somewhere else
// to go (a group's other URLs) tries there: a broker that hangs, a host
// that drops packets. A refused connection moves on at once.
constexpr std::chrono::milliseconds kLinkPatience{2000};

// A group's client rotates through its list while an election runs and
// waits one backoff on each node before asking: a shorter cap finds the
// new leader sooner (TxmqdFailover: kill -> next ack p50 4.7 s with the
// 1 s cap, 4.0 s with this), for at most two requests a second per client
// while nobody leads. One URL keeps the longer cap, as before.
BrokerPicker::Options PickerOptions(size_t urls) {
  BrokerPicker::Options options;
  if (urls > 1) options.max_backoff = std::chrono::milliseconds(500);
  return options;
}

struct Outgoing {
  zmq::message_t bytes;
  uint64_t request_id = 0;
  ReplyFn done;  // empty for replies to broker calls
  SteadyTime deadline;
  bool expects_reply = false;
  bool hello = false;
};

struct Pending {
  ReplyFn done;
  SteadyTime deadline;
  bool sent = false;
  zmq::message_t bytes;  // shares the request's buffer, to send it again elsewhere
  bool hello = false;
};

// Calls the broker starts (as opposed to replies to ours).
bool IsBrokerCall(wire::Envelope::Which which) {
  return which == wire::Envelope::CHECK_TRANSACTION;
}

}  // namespace

class Connection::Impl {
 public:
  Impl(ConnectionOptions options, std::vector<std::string> urls, IncomingCallFn on_call)
      : options_(std::move(options)),
        picker_(urls, PickerOptions(urls.size())),
        on_call_(std::move(on_call)),
        log_(Logger("client")),
        context_(1) {}

  ~Impl() { Stop(); }

  Status Start() {
    // Create the socket here so a bad endpoint fails Open(), then hand it to
    // the I/O thread, which is its only user from then on.
    routing_id_ = NewSecretHex(16);
    if (Status s = OpenSocket(picker_.current()); !s.ok()) return s;
    has_monitor_ = monitor_ != nullptr;
    current_url_ = picker_.current();
    link_since_ = SteadyClock::now();
    QueueHello();
    thread_ = std::thread([this] {
      SetThreadName("txmq-io");
      Run();
    });
    return Status::OK();
  }

  // A DEALER connected to `url` (with its monitor), in place of the one
  // before, if any. A new socket rather than disconnect + connect: with
  // ZMQ_IMMEDIATE, zmq_disconnect leaves the old connection's pipe
  // writable until the socket next processes commands, so the first
  // requests meant for the new broker could still leave for the old one.
  // The routing id stays, so a broker knows the client again.
  Status OpenSocket(const std::string& url) {
    auto opened = OpenClientSocket(
        context_, url,
        {.routing_id = routing_id_,
         .curve = options_.curve,
         // One endpoint per socket: the old one's may still be in use.
         .monitor_endpoint = "inproc://txmq-monitor-" + std::to_string(sockets_opened_++)});
    if (!opened.ok()) return opened.status();
    CloseSocket();
    socket_ = std::move(opened->socket);
    monitor_ = std::move(opened->monitor);
    unusable_socket_ = false;
    return Status::OK();
  }

  void CloseSocket() {
    ClientSocket s{std::move(socket_), std::move(monitor_)};
    CloseClientSocket(s);
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    wake_.Notify();
    if (thread_.joinable()) thread_.join();
  }

  wire::OutFrame NewRequest() { return wire::OutFrame(next_request_id_.fetch_add(1)); }

  void Enqueue(Outgoing out) {
    bool accepted = false, wake = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!stopped_) {
        inbox_.push_back(std::move(out));
        accepted = true;
        // The I/O thread looks at the inbox before each poll: only one that
        // waits in poll needs waking, and once (a system call saved per
        // request while it is busy, e.g. completing replies whose callbacks
        // send the next requests).
        wake = io_polling_ && !io_woken_;
        io_woken_ = io_woken_ || wake;
      }
    }
    if (wake) {
      wake_.Notify();
    } else if (!accepted && out.done) {
      out.done(Status::Unavailable("connection to " + options_.broker + " is closed"));
    }
  }

  void Call(wire::OutFrame request, std::chrono::milliseconds timeout, ReplyFn done) {
    Outgoing out;
    out.request_id = request.request_id();
    out.bytes = request.Encode();
    // The broker's socket drops the whole connection on a bigger frame, and
    // with it every other call in flight: refuse this one alone.
    if (const size_t limit = FrameLimit(); out.bytes.size() > limit) {
      if (done) {
        done(Status::TooLarge("request of " + std::to_string(out.bytes.size()) +
                              " bytes is above the broker's frame limit of " +
                              std::to_string(limit) + " bytes; nothing was sent"));
      }
      return;
    }
    out.done = std::move(done);
    out.deadline = SteadyClock::now() + timeout;
    out.expects_reply = true;
    Enqueue(std::move(out));
  }

  void Reply(wire::OutFrame reply) {
    Outgoing out;
    out.request_id = reply.request_id();
    out.bytes = reply.Encode();
    out.deadline = SteadyClock::now() + std::chrono::seconds(10);
    Enqueue(std::move(out));
  }

  void Close(std::chrono::milliseconds timeout) {
    if (closed_.exchange(true)) return;
    // Saying goodbye to a broker that has not answered lately only delays
    // the caller; the broker forgets silent clients by itself.
    if (SteadyClock::now() - last_heard() > options_.heartbeat_interval * 3) {
      Stop();
      return;
    }
    auto request = NewRequest();
    request.envelope().setGoodbye();
    std::promise<void> done;
    auto future = done.get_future();
    Call(std::move(request), timeout, [&done](Result<wire::Frame>) { done.set_value(); });
    future.wait();
    Stop();
  }

  Status WaitConnected(std::chrono::milliseconds timeout) {
    if (!has_monitor_) return Status::OK();  // no monitor: nothing to learn from
    if (picker_.bootstrap().size() > 1) return WaitAnyConnected(timeout);
    const LinkState::Link link = link_.Wait(timeout);
    switch (link) {
      case LinkState::Link::kConnected:
        return Status::OK();
      case LinkState::Link::kConnecting:
        break;
      default:
        if (Status s = LinkStatus(link); !s.ok() && link != LinkState::Link::kHandshakeFailed) {
          return s;
        }
        return Status::Timeout("no connection to broker " + options_.broker + " within " +
                               FormatDurationMs(timeout.count()) + ": " +
                               LinkStatus(link).message());
    }
    return Status::Timeout("no connection to broker " + options_.broker + " within " +
                           FormatDurationMs(timeout.count()));
  }

  // A group's list: a refused URL is not an answer, since the I/O thread
  // moves on to the next one; wait for any connection.
  Status WaitAnyConnected(std::chrono::milliseconds timeout) {
    const SteadyTime deadline = SteadyClock::now() + timeout;
    LinkState::Link link = LinkState::Link::kConnecting;
    for (SteadyTime now = SteadyClock::now(); now < deadline; now = SteadyClock::now()) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
      link = link_.Wait(std::min(left, std::chrono::milliseconds(100)));
      if (link == LinkState::Link::kConnected) return Status::OK();
      if (LinkState::IsFinal(link)) return LinkStatus(link);
      // Decided but not connected: the I/O thread is about to move on.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const Status last = LinkStatus(link);
    return Status::Timeout("no connection to any broker of " + options_.broker + " within " +
                           FormatDurationMs(timeout.count()) +
                           (last.ok() ? std::string() : " (last: " + last.message() + ")"));
  }

  std::string current_url() const {
    std::lock_guard<std::mutex> lock(url_mu_);
    return current_url_;
  }

  const ConnectionOptions& options() const { return options_; }
  SteadyTime last_heard() const { return SteadyTime(SteadyClock::duration(last_heard_ns_.load())); }
  uint32_t broker_max_message_bytes() const { return broker_max_message_bytes_.load(); }

  // The broker's frame limit: as announced; derived from its message limit
  // for a broker that does not announce one; the default's before hello.
  size_t FrameLimit() const {
    if (const uint32_t announced = broker_max_frame_bytes_.load(); announced != 0) {
      return announced;
    }
    if (const uint32_t message = broker_max_message_bytes_.load(); message != 0) {
      return size_t{message} + wire::kEnvelopeOverheadBytes;  // its socket's limit
    }
    return wire::MaxFrameBytes(wire::kDefaultMaxMessageBytes);
  }

 private:
  void QueueHello() {
    Outgoing out = MakeHello();
    // Hello is always first in line, also after a broker restart.
    std::lock_guard<std::mutex> lock(mu_);
    inbox_.push_front(std::move(out));
  }

  Outgoing MakeHello() {
    auto request = NewRequest();
    auto hello = request.envelope().initHello();
    hello.setClientId(options_.client_id);
    hello.setRole(options_.role);
    hello.setGroup(options_.group);
    hello.setVersion(wire::PROTOCOL_VERSION);
    hello.setSoftware(options_.software);
    hello.setChecker(options_.checker);
    hello.setInstance(options_.instance);
    Outgoing out;
    out.request_id = request.request_id();
    out.bytes = request.Encode();
    // If it fails, the next heartbeat reply ("unregistered") brings it back.
    out.deadline = SteadyClock::now() + std::chrono::seconds(30);
    out.expects_reply = true;
    out.hello = true;
    out.done = [this](Result<wire::Frame> reply) {
      if (!reply.ok()) {
        // Said again on the next heartbeat the broker answers "unregistered".
        if (!closed_) {
          log_->warn("hello to {} failed: {}", picker_.current(), reply.status().ToString());
        }
        return;
      }
      auto ok = reply->envelope().getHelloOk();
      broker_max_message_bytes_ = ok.getMaxMessageBytes();
      broker_max_frame_bytes_ = ok.getMaxFrameBytes();
      broker_client_timeout_ms_ = ok.getClientTimeoutMs();
    };
    return out;
  }

  // I/O thread: the configured interval, or a quarter of the broker's client
  // timeout when that is shorter, so a few late heartbeats on a busy machine
  // do not make the broker forget a live client (and end its leases).
  std::chrono::milliseconds HeartbeatInterval() const {
    const uint32_t timeout_ms = broker_client_timeout_ms_.load();
    if (timeout_ms == 0) return options_.heartbeat_interval;
    const auto quarter =
        std::max(std::chrono::milliseconds(timeout_ms / 4), std::chrono::milliseconds(50));
    return std::min(quarter, options_.heartbeat_interval);
  }

  void QueueHeartbeat() {
    auto request = NewRequest();
    request.envelope().setHeartbeat();
    Outgoing out;
    out.request_id = request.request_id();
    out.bytes = request.Encode();
    out.deadline = SteadyClock::now() + options_.heartbeat_interval * 3;
    out.expects_reply = true;
    out.done = [this](Result<wire::Frame> reply) {
      if (reply.ok() && !reply->envelope().getHeartbeatOk().getRegistered()) {
        log_->info("broker {} does not know client {} (restarted?); saying hello again",
                   picker_.current(), options_.client_id);
        QueueHello();
      }
    };
    Register(std::move(out));
  }

  // I/O thread: move requests from callers into the pending table.
  void TakeInbox() {
    std::deque<Outgoing> batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch.swap(inbox_);
    }
    for (auto& out : batch) Register(std::move(out));
  }

  void Register(Outgoing out) {
    // A link libzmq gave up on (our key refused, CURVE on one side only)
    // never carries anything: say why at once.
    if (const LinkState::Link link = link_.state(); LinkState::IsFinal(link)) {
      if (out.done) out.done(LinkStatus(link));
      return;
    }
    Track(out);
    unsent_.push_back(std::move(out));
  }

  // A call's entry in the pending table (nothing for a reply).
  void Track(Outgoing& out) {
    if (!out.expects_reply) return;
    deadlines_.emplace(out.deadline, out.request_id);
    Pending& p = pending_[out.request_id];
    p = Pending{std::move(out.done), out.deadline, false, zmq::message_t(), out.hello};
    p.bytes.copy(out.bytes);  // a reference, not a copy, above ZeroMQ's 33-byte inline size
  }

  void SendUnsent() {
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

  void Complete(uint64_t request_id, Result<wire::Frame> result) {
    auto it = pending_.find(request_id);
    if (it == pending_.end()) return;
    Pending p = std::move(it->second);
    pending_.erase(it);
    deadlines_.erase({p.deadline, request_id});
    if (p.done) p.done(std::move(result));
  }

  void ReceiveAll() {
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

  void ExpireDeadlines(SteadyTime now) {
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
        Complete(id,
                 Status(StatusCode::kNotLeader,
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

  void Run() {
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

  // I/O thread: the connection to the broker dropped. Calls already sent
  // on it fail TIMEOUT (their outcome is unknown: the broker may have
  // processed them); calls not yet sent wait for the reconnect.
  void OnMonitorEvent() {
    bool disconnected = false;
    while (true) {
      zmq::message_t event, address;
      if (!monitor_->recv(event, zmq::recv_flags::dontwait)) break;
      if (event.more()) (void)monitor_->recv(address, zmq::recv_flags::dontwait);
      uint16_t id = 0;
      uint32_t value = 0;
      if (event.size() >= 6) {
        std::memcpy(&id, event.data(), 2);
        std::memcpy(&value, static_cast<const char*>(event.data()) + 2, 4);
      }
      disconnected = disconnected || id == ZMQ_EVENT_DISCONNECTED;
      link_.OnEvent(id, value);
    }
    if (const LinkState::Link link = link_.state(); LinkState::IsFinal(link)) {
      const Status why = LinkStatus(link);
      log_->error("{}", why.message());
      std::vector<uint64_t> all;
      for (const auto& [id, p] : pending_) all.push_back(id);
      for (uint64_t id : all) Complete(id, why);
      return;
    }
    if (!disconnected) return;
    link_since_ = SteadyClock::now();
    // Replies the broker sent before it went away may still sit in the
    // socket (ZeroMQ flags them readable lazily): take them first, so a
    // call that got its answer is not reported as "outcome unknown".
    ReceiveAll();
    std::vector<uint64_t> lost;
    for (const auto& [id, p] : pending_) {
      if (p.sent) lost.push_back(id);
    }
    if (!lost.empty()) {
      log_->info("connection to {} dropped; {} calls in flight fail and may be retried",
                 picker_.current(), lost.size());
    }
    for (uint64_t id : lost) {
      Complete(id, Status::Timeout("connection to broker " + picker_.current() +
                                   " dropped before the reply; outcome unknown"));
    }
  }

  // I/O thread: the broker answered a call NOT_LEADER naming `leader`.
  void OnNotLeader(const std::string& leader, const Status& status) {
    const SteadyTime now = SteadyClock::now();
    last_not_leader_ = status;
    const std::string to = picker_.OnNotLeader(leader, now);
    if (!to.empty()) {
      log_->info("{}; moving to {}", status.message(), to);
    } else {
      log_->debug("{}; asking again", status.message());
    }
    // It stored nothing: everything sent to it goes out again, in order,
    // under new request ids (its answers to the old ones are ignored).
    std::vector<uint64_t> again;
    for (auto& [id, p] : pending_) {
      if (p.sent && !p.hello) again.push_back(id);
    }
    std::sort(again.begin(), again.end());
    std::vector<Outgoing> resend;
    for (uint64_t old_id : again) {
      auto node = pending_.extract(old_id);
      Pending& p = node.mapped();
      deadlines_.erase({p.deadline, old_id});
      const uint64_t id = next_request_id_.fetch_add(1);
      auto bytes = wire::WithRequestId(p.bytes, id);
      if (!bytes.ok()) {  // cannot happen: these bytes were encoded here
        if (p.done) p.done(bytes.status());
        continue;
      }
      p.sent = false;
      p.bytes.copy(*bytes);
      deadlines_.emplace(p.deadline, id);
      Outgoing out;
      out.request_id = id;
      out.bytes = std::move(*bytes);
      out.deadline = p.deadline;
      out.expects_reply = true;
      node.key() = id;
      pending_.insert(std::move(node));
      resend.push_back(std::move(out));
    }
    for (auto it = resend.rbegin(); it != resend.rend(); ++it) unsent_.push_front(std::move(*it));
    if (!to.empty()) MoveSocket(to, now);
    SayHelloFirst();
  }

  // I/O thread: leave a broker whose link failed, if there is somewhere
  // else to go.
  void CheckLink(SteadyTime now) {
    const LinkState::Link link = unusable_socket_ ? LinkState::Link::kConnecting : link_.state();
    if (link == LinkState::Link::kConnected || LinkState::IsFinal(link)) return;
    if (link != LinkState::Link::kRefused && now - link_since_ < kLinkPatience) return;
    link_since_ = now;
    const std::string from = picker_.current();
    const std::string to = picker_.OnLinkDown(now, link != LinkState::Link::kRefused);
    if (to.empty()) return;
    log_->info("no connection to broker {} ({}); trying {}", from,
               link == LinkState::Link::kRefused ? "refused" : "not connected in time", to);
    MoveOn(to, now, "no connection to broker " + from + " any more, and no reply from it");
  }

  // I/O thread: a group's client leaves a broker that left a call
  // unanswered or answered UNAVAILABLE (silent_ says which).
  void LeaveSilentBroker(SteadyTime now) {
    const std::string why = std::move(silent_);
    silent_.clear();
    const std::string from = picker_.current();
    const std::string to = picker_.OnSilent(now);
    if (to.empty()) return;
    log_->info("broker {} {}; trying {}", from, why, to);
    MoveOn(to, now, "the client left broker " + from + " (it " + why + ") before its reply");
  }

  bool MayMoveOn() const { return options_.follow_leader && picker_.bootstrap().size() > 1; }

  // I/O thread: calls sent on the current link fail TIMEOUT (the broker may
  // have done them; a send is retried with its message id and dedup
  // answers), the socket moves to `to` and says hello there first.
  void MoveOn(const std::string& to, SteadyTime now, const std::string& why) {
    std::vector<uint64_t> lost;
    for (const auto& [id, p] : pending_) {
      if (p.sent && !p.hello) lost.push_back(id);
    }
    for (uint64_t id : lost) Complete(id, Status::Timeout(why + "; outcome unknown"));
    MoveSocket(to, now);
    SayHelloFirst();
  }

  // I/O thread: a fresh hello goes out before anything else (the broker
  // may not know this client); earlier hellos are forgotten.
  void SayHelloFirst() {
    std::vector<uint64_t> hellos;
    for (const auto& [id, p] : pending_) {
      if (p.hello) hellos.push_back(id);
    }
    for (uint64_t id : hellos) {
      deadlines_.erase({pending_.at(id).deadline, id});
      pending_.erase(id);  // its unsent_ entry, if any, is skipped
    }
    Outgoing hello = MakeHello();
    Track(hello);
    unsent_.push_front(std::move(hello));
  }

  // I/O thread: talk to `to` from now on.
  void MoveSocket(const std::string& to, SteadyTime now) {
    link_.Reset();
    link_since_ = now;
    {
      std::lock_guard<std::mutex> lock(url_mu_);
      current_url_ = to;
    }
    if (Status s = OpenSocket(to); !s.ok()) {
      // A URL a broker named that ZeroMQ refuses: stay unconnected, and
      // CheckLink moves on after its patience.
      log_->warn("{}", s.message());
      CloseSocket();
      socket_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
      socket_->set(zmq::sockopt::linger, 0);
      socket_->set(zmq::sockopt::immediate, 1);
      unusable_socket_ = true;
    }
  }

  Status Refused() const {
    return Status::Unavailable("no broker at " + current_url() + " (connection refused)");
  }

  // Why a link in state `link` carries nothing; OK when it may.
  Status LinkStatus(LinkState::Link link) const {
    const std::string b = current_url();
    switch (link) {
      case LinkState::Link::kConnected:
      case LinkState::Link::kConnecting:
        return Status::OK();
      case LinkState::Link::kRefused:
        return Refused();
      case LinkState::Link::kKeyRefused:
        return Status::PermissionDenied("broker " + b + " refused this client's CURVE key " +
                                        options_.curve.public_key +
                                        " (not in its ACL, or revoked)");
      case LinkState::Link::kMechanismMismatch:
        if (options_.curve.enabled()) {
          return Status::FailedPrecondition("broker " + b +
                                            " does not use CURVE, but this client was given keys");
        }
        return Status::PermissionDenied(
            "broker " + b +
            " requires CURVE: give this client its secret key (--curve-key) and the "
            "broker's public key (--server-key)");
      case LinkState::Link::kProtocolError:
        return Status::Unavailable("the handshake with broker " + b +
                                   " failed with a protocol error");
      case LinkState::Link::kHandshakeFailed:
        return Status::Unavailable(
            "the handshake with broker " + b + " keeps failing" +
            (options_.curve.enabled()
                 ? ": the broker drops it; is --server-key the broker's public key?"
                 : ": is a txmq broker listening there?"));
    }
    return Status::OK();
  }

  ConnectionOptions options_;
  BrokerPicker picker_;  // I/O thread only, once started
  IncomingCallFn on_call_;
  std::shared_ptr<spdlog::logger> log_;
  zmq::context_t context_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<zmq::socket_t> monitor_;  // disconnect events of socket_
  std::atomic<bool> has_monitor_{false};    // set before the I/O thread starts
  std::thread thread_;
  EventFd wake_;
  std::atomic<uint64_t> next_request_id_{1};
  std::atomic<uint32_t> broker_max_message_bytes_{0};
  std::atomic<uint32_t> broker_max_frame_bytes_{0};
  std::atomic<uint32_t> broker_client_timeout_ms_{0};  // from the broker's hello reply
  std::atomic<bool> closed_{false};
  std::atomic<int64_t> last_heard_ns_{0};

  LinkState link_;  // fed by the monitor, read by WaitConnected

  std::mutex mu_;
  std::deque<Outgoing> inbox_;  // guarded by mu_
  bool stopped_ = false;        // guarded by mu_
  bool io_polling_ = false;     // guarded by mu_: the I/O thread is in (or entering) poll
  bool io_woken_ = false;       // guarded by mu_: and the eventfd was written since

  mutable std::mutex url_mu_;
  std::string current_url_;  // guarded by url_mu_; picker_.current() for other threads

  // I/O thread only.
  Status last_not_leader_;        // the last NOT_LEADER answer, until a broker serves
  std::string silent_;            // why to leave the current broker ("": stay)
  SteadyTime link_since_;         // since when the current link is not connected (if it is not)
  std::string routing_id_;        // every socket's, so a broker knows the client again
  uint64_t sockets_opened_ = 0;   // names each socket's monitor endpoint
  bool unusable_socket_ = false;  // the current URL could not be connected to
  std::unordered_map<uint64_t, Pending> pending_;
  std::set<std::pair<SteadyTime, uint64_t>> deadlines_;
  std::deque<Outgoing> unsent_;
};

Result<std::unique_ptr<Connection>> Connection::Open(ConnectionOptions options,
                                                     IncomingCallFn on_call) {
  if (options.broker.empty()) return Status::InvalidArgument("broker endpoint is empty");
  auto urls = ParseBrokerList(options.broker);
  if (!urls.ok()) return urls.status();
  if (options.client_id.empty()) options.client_id = NewUuidV7();
  if (options.client_id.size() > 255) {
    return Status::InvalidArgument("client id is longer than 255 bytes");
  }
  if (options.instance.size() > 255) {
    return Status::InvalidArgument("client instance is longer than 255 bytes");
  }
  if (options.curve.enabled()) {
    if (Status s = curve::CheckKey("server key", options.curve.server_key); !s.ok()) return s;
  }
  if (options.heartbeat_interval <= std::chrono::milliseconds(0)) {
    return Status::InvalidArgument("heartbeat_interval must be positive");
  }
  auto impl = std::make_unique<Impl>(std::move(options), std::move(*urls), std::move(on_call));
  if (Status s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<Connection>(new Connection(std::move(impl)));
}

Connection::Connection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Connection::~Connection() { Close(); }

wire::OutFrame Connection::NewRequest() { return impl_->NewRequest(); }

void Connection::Call(wire::OutFrame request, std::chrono::milliseconds timeout, ReplyFn done) {
  impl_->Call(std::move(request), timeout, std::move(done));
}

Result<wire::Frame> Connection::CallSync(wire::OutFrame request,
                                         std::chrono::milliseconds timeout) {
  std::promise<Result<wire::Frame>> promise;
  auto future = promise.get_future();
  impl_->Call(std::move(request), timeout,
              [&promise](Result<wire::Frame> r) { promise.set_value(std::move(r)); });
  return future.get();
}

void Connection::Reply(wire::OutFrame reply) { impl_->Reply(std::move(reply)); }

Status Connection::WaitConnected(std::chrono::milliseconds timeout) {
  return impl_->WaitConnected(timeout);
}

void Connection::Close(std::chrono::milliseconds timeout) { impl_->Close(timeout); }

const std::string& Connection::client_id() const { return impl_->options().client_id; }
const std::string& Connection::broker() const { return impl_->options().broker; }
std::string Connection::current_broker() const { return impl_->current_url(); }
uint32_t Connection::broker_max_message_bytes() const { return impl_->broker_max_message_bytes(); }
size_t Connection::broker_max_frame_bytes() const { return impl_->FrameLimit(); }

}  // namespace txmq::net
