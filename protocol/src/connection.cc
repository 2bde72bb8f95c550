// Connection: opening, calls and their completion, hello and heartbeats
// (the Impl's declaration and threads: connection_impl.h).
#include "protocol/src/connection.h"

#include "protocol/src/connection_impl.h"

namespace txmq::net {

Status Connection::Impl::Start() {
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

Status Connection::Impl::OpenSocket(const std::string& url) {
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

void Connection::Impl::CloseSocket() {
  ClientSocket s{std::move(socket_), std::move(monitor_)};
  CloseClientSocket(s);
}

void Connection::Impl::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  wake_.Notify();
  if (thread_.joinable()) thread_.join();
}

void Connection::Impl::Enqueue(Outgoing out) {
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

void Connection::Impl::Call(wire::OutFrame request, std::chrono::milliseconds timeout,
                            ReplyFn done) {
  Outgoing out;
  out.request_id = request.request_id();
  out.bytes = request.Encode();
  // The broker's socket drops the whole connection on a bigger frame, and
  // with it every other call in flight: refuse this one alone.
  if (const size_t limit = FrameLimit(); out.bytes.size() > limit) {
    if (done) {
      done(Status::TooLarge("request of " + std::to_string(out.bytes.size()) +
                            " bytes is above the broker's frame limit of " + std::to_string(limit) +
                            " bytes; nothing was sent"));
    }
    return;
  }
  out.done = std::move(done);
  out.deadline = SteadyClock::now() + timeout;
  out.expects_reply = true;
  Enqueue(std::move(out));
}

void Connection::Impl::Reply(wire::OutFrame reply) {
  Outgoing out;
  out.request_id = reply.request_id();
  out.bytes = reply.Encode();
  out.deadline = SteadyClock::now() + std::chrono::seconds(10);
  Enqueue(std::move(out));
}

void Connection::Impl::Close(std::chrono::milliseconds timeout) {
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

Status Connection::Impl::WaitConnected(std::chrono::milliseconds timeout) {
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
                             FormatDurationMs(timeout.count()) + ": " + LinkStatus(link).message());
  }
  return Status::Timeout("no connection to broker " + options_.broker + " within " +
                         FormatDurationMs(timeout.count()));
}

Status Connection::Impl::WaitAnyConnected(std::chrono::milliseconds timeout) {
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

std::string Connection::Impl::current_url() const {
  std::lock_guard<std::mutex> lock(url_mu_);
  return current_url_;
}

size_t Connection::Impl::FrameLimit() const {
  if (const uint32_t announced = broker_max_frame_bytes_.load(); announced != 0) {
    return announced;
  }
  if (const uint32_t message = broker_max_message_bytes_.load(); message != 0) {
    return size_t{message} + wire::kEnvelopeOverheadBytes;  // its socket's limit
  }
  return wire::MaxFrameBytes(wire::kDefaultMaxMessageBytes);
}

void Connection::Impl::QueueHello() {
  Outgoing out = MakeHello();
  // Hello is always first in line, also after a broker restart.
  std::lock_guard<std::mutex> lock(mu_);
  inbox_.push_front(std::move(out));
}

Outgoing Connection::Impl::MakeHello() {
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

std::chrono::milliseconds Connection::Impl::HeartbeatInterval() const {
  const uint32_t timeout_ms = broker_client_timeout_ms_.load();
  if (timeout_ms == 0) return options_.heartbeat_interval;
  const auto quarter =
      std::max(std::chrono::milliseconds(timeout_ms / 4), std::chrono::milliseconds(50));
  return std::min(quarter, options_.heartbeat_interval);
}

void Connection::Impl::QueueHeartbeat() {
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

bool Connection::OnIoThread() const { return impl_->OnIoThread(); }

const std::string& Connection::client_id() const { return impl_->options().client_id; }
const std::string& Connection::broker() const { return impl_->options().broker; }
std::string Connection::current_broker() const { return impl_->current_url(); }
uint32_t Connection::broker_max_message_bytes() const { return impl_->broker_max_message_bytes(); }
size_t Connection::broker_max_frame_bytes() const { return impl_->FrameLimit(); }

}  // namespace txmq::net
