// How a Connection follows its broker, on the I/O thread
// (connection_impl.h): the socket monitor's events, NOT_LEADER answers,
// a link that stays down or a broker that falls silent, and moving the
// socket to another URL of the group.
#include "protocol/src/connection_impl.h"

namespace txmq::net {

namespace {

// How long a link may stay unconnected before a client with somewhere else
// to go (a group's other URLs) tries there: a broker that hangs, a host
// that drops packets. A refused connection moves on at once.
constexpr std::chrono::milliseconds kLinkPatience{2000};

}  // namespace

void Connection::Impl::OnMonitorEvent() {
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

void Connection::Impl::OnNotLeader(const std::string& leader, const Status& status) {
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

void Connection::Impl::CheckLink(SteadyTime now) {
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

void Connection::Impl::LeaveSilentBroker(SteadyTime now) {
  const std::string why = std::move(silent_);
  silent_.clear();
  const std::string from = picker_.current();
  const std::string to = picker_.OnSilent(now);
  if (to.empty()) return;
  log_->info("broker {} {}; trying {}", from, why, to);
  MoveOn(to, now, "the client left broker " + from + " (it " + why + ") before its reply");
}

void Connection::Impl::MoveOn(const std::string& to, SteadyTime now, const std::string& why) {
  std::vector<uint64_t> lost;
  for (const auto& [id, p] : pending_) {
    if (p.sent && !p.hello) lost.push_back(id);
  }
  for (uint64_t id : lost) Complete(id, Status::Timeout(why + "; outcome unknown"));
  MoveSocket(to, now);
  SayHelloFirst();
}

void Connection::Impl::SayHelloFirst() {
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

void Connection::Impl::MoveSocket(const std::string& to, SteadyTime now) {
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

Status Connection::Impl::Refused() const {
  return Status::Unavailable("no broker at " + current_url() + " (connection refused)");
}

Status Connection::Impl::LinkStatus(LinkState::Link link) const {
  const std::string b = current_url();
  switch (link) {
    case LinkState::Link::kConnected:
    case LinkState::Link::kConnecting:
      return Status::OK();
    case LinkState::Link::kRefused:
      return Refused();
    case LinkState::Link::kKeyRefused:
      return Status::PermissionDenied("broker " + b + " refused this client's CURVE key " +
                                      options_.curve.public_key + " (not in its ACL, or revoked)");
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

}  // namespace txmq::net
