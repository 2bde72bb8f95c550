// Threads and what they own: the caller's thread (the replication thread)
// owns router_, every DEALER in dealers_ and zap_'s REP socket; libzmq's
// one I/O thread of context_ does the TCP and CURVE work. Nothing here is
// shared between threads.
//
// Frames on a link (ZeroMQ multipart, as the ROUTER sees them):
//
//   routing id ("<node>/<16 hex digits>") | one encoded ReplicationMessage
//
// The DEALER sends only the second part; anything else is refused.
#include "broker/src/cluster/zmq_transport.h"

#include <set>

#include "protocol/src/curve_keys.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::cluster {

namespace {

// A node name goes into a routing id (at most 255 bytes) before a '/'.
bool ValidName(const std::string& name) {
  return !name.empty() && name.size() <= 200 && name.find('/') == std::string::npos;
}

Status CheckOptions(const ZmqTransportOptions& o) {
  if (!ValidName(o.node)) return Status::InvalidArgument("node: 1 to 200 characters, no '/'");
  if (o.bind.empty()) return Status::InvalidArgument("bind must not be empty");
  if (o.send_hwm <= 0 || o.receive_hwm <= 0) {
    return Status::InvalidArgument("send_hwm and receive_hwm must be positive");
  }
  if (o.heartbeat_ivl.count() <= 0 || o.heartbeat_timeout < o.heartbeat_ivl) {
    return Status::InvalidArgument("heartbeat_timeout must be at least heartbeat_ivl > 0");
  }
  std::set<std::string> names{o.node};
  std::set<std::string> keys;
  const bool curve = !o.secret_key.empty();
  if (curve) {
    if (Status s = curve::CheckKey("secret_key", o.secret_key); !s.ok()) return s;
    if (!curve::Available()) {
      return Status::Unavailable("secret_key given but this libzmq has no CURVE");
    }
  }
  for (const ZmqPeer& p : o.peers) {
    if (!ValidName(p.name) || p.endpoint.empty()) {
      return Status::InvalidArgument(
          "peers: every peer needs a name (1 to 200 characters, no '/') and an endpoint");
    }
    if (!names.insert(p.name).second) {
      return Status::InvalidArgument("peers: the name " + p.name + " is used twice");
    }
    if (!curve) continue;
    if (Status s = curve::CheckKey("peers[" + p.name + "].public_key", p.public_key); !s.ok()) {
      return s;
    }
    if (!keys.insert(p.public_key).second) {
      return Status::InvalidArgument("peers: the public key of " + p.name + " is used twice");
    }
  }
  return Status::OK();
}

}  // namespace

ZmqReplicationTransport::ZmqReplicationTransport(ZmqTransportOptions options)
    : options_(std::move(options)) {}

ZmqReplicationTransport::~ZmqReplicationTransport() = default;

Result<std::unique_ptr<ZmqReplicationTransport>> ZmqReplicationTransport::Open(
    ZmqTransportOptions options) {
  if (Status s = CheckOptions(options); !s.ok()) return s;
  std::unique_ptr<ZmqReplicationTransport> t(new ZmqReplicationTransport(std::move(options)));
  if (Status s = t->Setup(); !s.ok()) return s;
  return t;
}

void ZmqReplicationTransport::SetCommon(zmq::socket_t& s) const {
  s.set(zmq::sockopt::linger, 0);  // closing never waits for a dead peer
  s.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(options_.heartbeat_ivl.count()));
  s.set(zmq::sockopt::heartbeat_timeout, static_cast<int>(options_.heartbeat_timeout.count()));
  s.set(zmq::sockopt::heartbeat_ttl, static_cast<int>(options_.heartbeat_timeout.count()));
}

Status ZmqReplicationTransport::Setup() {
  const bool curve = !options_.secret_key.empty();
  std::string public_key;
  if (curve) {
    auto pub = curve::PublicKeyOf(options_.secret_key);
    if (!pub.ok()) return pub.status();
    public_key = *pub;
    for (const ZmqPeer& p : options_.peers) name_by_key_[p.public_key] = p.name;
    // Before the ROUTER exists: libzmq admits every key while nothing
    // answers at the ZAP endpoint.
    auto zap = ZapAllowList::Bind(context_, name_by_key_);
    if (!zap.ok()) return zap.status();
    zap_ = std::move(*zap);
  }
  try {
    router_ = zmq::socket_t(context_, zmq::socket_type::router);
    SetCommon(router_);
    router_.set(zmq::sockopt::rcvhwm, options_.receive_hwm);
    router_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options_.max_frame_bytes));
    if (curve) {
      router_.set(zmq::sockopt::zap_domain, kReplicationZapDomain);
      router_.set(zmq::sockopt::curve_server, 1);
      router_.set(zmq::sockopt::curve_secretkey, options_.secret_key);
    }
    router_.bind(options_.bind);
    endpoint_ = router_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Status::Unavailable("cannot bind the replication socket at " + options_.bind + ": " +
                               e.what());
  }
  for (const ZmqPeer& p : options_.peers) {
    try {
      zmq::socket_t d(context_, zmq::socket_type::dealer);
      SetCommon(d);
      d.set(zmq::sockopt::routing_id, options_.node + "/" + NewSecretHex(8));
      d.set(zmq::sockopt::sndhwm, options_.send_hwm);
      d.set(zmq::sockopt::rcvhwm, 1);     // nothing is ever sent to a DEALER
      d.set(zmq::sockopt::immediate, 1);  // queue only to a live connection
      d.set(zmq::sockopt::reconnect_ivl, static_cast<int>(options_.reconnect_ivl.count()));
      d.set(zmq::sockopt::reconnect_ivl_max, static_cast<int>(options_.reconnect_ivl_max.count()));
      if (curve) {
        d.set(zmq::sockopt::curve_serverkey, p.public_key);
        d.set(zmq::sockopt::curve_publickey, public_key);
        d.set(zmq::sockopt::curve_secretkey, options_.secret_key);
      }
      d.connect(p.endpoint);
      dealers_.emplace(p.name, std::move(d));
    } catch (const zmq::error_t& e) {
      return Status::InvalidArgument("peers[" + p.name + "].endpoint " + p.endpoint + ": " +
                                     e.what());
    }
  }
  return Status::OK();
}

Status ZmqReplicationTransport::Send(const std::string& peer, SharedFrame frame) {
  auto it = dealers_.find(peer);
  if (it == dealers_.end()) return Status::Unavailable("no replication peer " + peer);
  try {
    // ZeroMQ takes the frame without a copy and lets go of it (on its I/O
    // thread) once written: the message holds a reference until then.
    auto* held = new SharedFrame(std::move(frame));
    zmq::message_t message(
        const_cast<char*>((*held)->data()), (*held)->size(),
        [](void*, void* hint) { delete static_cast<SharedFrame*>(hint); }, held);
    if (it->second.send(message, zmq::send_flags::dontwait)) return Status::OK();
  } catch (const zmq::error_t& e) {
    ++dropped_;
    return Status::Unavailable("send to " + peer + " failed: " + e.what());
  }
  ++dropped_;
  return Status::Unavailable("no room toward " + peer + " (not connected, or its queue is full)");
}

std::string ZmqReplicationTransport::Sender(std::vector<zmq::message_t>& frames) const {
  if (frames.size() != 2) return "";
  const std::string_view id = frames[0].to_string_view();
  const std::string name(id.substr(0, id.find('/')));
  if (name == options_.node || name.size() == id.size()) return "";
  if (!zap_) {
    for (const ZmqPeer& p : options_.peers) {
      if (p.name == name) return name;
    }
    return "";
  }
  // The key the ZAP handler admitted the connection with says who it is;
  // a member may not speak under another's name.
  try {
    auto it = name_by_key_.find(frames[1].gets("User-Id"));
    if (it != name_by_key_.end() && it->second == name) return name;
  } catch (const zmq::error_t&) {
    // No User-Id: the connection was not authenticated.
  }
  return "";
}

std::optional<TransportFrame> ZmqReplicationTransport::Receive() {
  if (zap_) zap_->ServeWaiting();
  while (true) {
    std::vector<zmq::message_t> frames;
    try {
      zmq::message_t part;
      if (!router_.recv(part, zmq::recv_flags::dontwait)) return std::nullopt;
      bool more = part.more();
      frames.push_back(std::move(part));
      // Whole multipart messages arrive at once; a longer one than ours is
      // read to its end and refused, keeping at most three parts.
      while (more) {
        zmq::message_t next;
        (void)router_.recv(next, zmq::recv_flags::none);
        more = next.more();
        if (frames.size() < 3) frames.push_back(std::move(next));
      }
    } catch (const zmq::error_t& e) {
      Logger("cluster")->error("replication receive failed: {}", e.what());
      return std::nullopt;
    }
    std::string from = Sender(frames);
    if (from.empty()) {
      ++refused_;
      Logger("cluster")->debug("refused a replication frame of {} parts", frames.size());
      continue;
    }
    return TransportFrame{std::move(from), frames[1].to_string()};
  }
}

bool ZmqReplicationTransport::Wait(std::chrono::milliseconds timeout, int wake_fd) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, wake_fd, ZMQ_POLLIN, 0},
                               {zap_ ? zap_->socket().handle() : nullptr, 0, ZMQ_POLLIN, 0}};
    // Rounded up: truncated, the last (for the leader's 1 ms wait: every)
    // millisecond would be polled with timeout 0, a busy loop on one core.
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    try {
      // With no wake fd its item is an fd of -1, which poll skips.
      zmq::poll(items, zap_ ? 3 : 2, std::max(left, std::chrono::milliseconds(0)));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) Logger("cluster")->error("replication poll failed: {}", e.what());
    }
    if (zap_ && (items[2].revents & ZMQ_POLLIN)) zap_->ServeWaiting();
    if ((items[0].revents | items[1].revents) & ZMQ_POLLIN) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
  }
}

uint64_t ZmqReplicationTransport::denied_connections() const { return zap_ ? zap_->denied() : 0; }

}  // namespace txmq::cluster
