// ZAP request and reply (RFC 27), one ZeroMQ frame each, after the REP
// envelope:
//
//   request: "1.0" | request id | domain | address | identity | mechanism |
//            credentials...           (CURVE: one frame, the 32-byte key)
//   reply:   "1.0" | request id | status "200"|"400" | status text |
//            user id | metadata (empty)
#include "broker/src/auth/zap_handler.h"

#include <vector>

#include "protocol/src/curve_keys.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::broker::auth {

namespace {

struct Verdict {
  bool allow = false;
  std::string text;     // the status text, and why in the log
  std::string user_id;  // the key, when allowed
  std::string principal;
};

}  // namespace

ZapHandler::ZapHandler(zmq::context_t& context, const AclHolder& acl)
    : acl_(acl), socket_(context, zmq::socket_type::rep) {}

Result<std::unique_ptr<ZapHandler>> ZapHandler::Start(zmq::context_t& context,
                                                      const AclHolder& acl) {
  std::unique_ptr<ZapHandler> zap(new ZapHandler(context, acl));
  try {
    zap->socket_.set(zmq::sockopt::linger, 0);
    zap->socket_.bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    return Status::Unavailable(std::string("cannot start the ZAP handler at ") + kZapEndpoint +
                               ": " + e.what());
  }
  zap->thread_ = std::thread([z = zap.get()] {
    SetThreadName("txmq-zap");
    z->Run();
  });
  return zap;
}

ZapHandler::~ZapHandler() {
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void ZapHandler::Run() {
  while (true) {
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, stop_.fd(), ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(-1));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      Logger("auth")->error("ZAP handler poll failed: {}", e.what());
      return;
    }
    if (items[1].revents & ZMQ_POLLIN) break;
    if (items[0].revents & ZMQ_POLLIN) Serve();
  }
  socket_.close();
}

void ZapHandler::Serve() {
  std::vector<zmq::message_t> frames;
  try {
    while (true) {
      zmq::message_t part;
      if (!socket_.recv(part, zmq::recv_flags::dontwait)) break;
      const bool more = part.more();
      frames.push_back(std::move(part));
      if (!more) break;
    }
  } catch (const zmq::error_t& e) {
    Logger("auth")->error("ZAP handler receive failed: {}", e.what());
    return;
  }
  if (frames.empty()) return;

  Verdict v;
  std::string address = "?";
  if (frames.size() < 6 || frames[0].to_string_view() != "1.0") {
    v.text = "malformed ZAP request";
  } else {
    address = frames[3].to_string();
    const std::string_view mechanism = frames[5].to_string_view();
    if (mechanism != "CURVE") {
      v.text = "mechanism " + std::string(mechanism) + " refused: this broker requires CURVE";
    } else if (frames.size() != 7 || frames[6].size() != 32) {
      v.text = "malformed CURVE credentials";
    } else {
      const std::string key = curve::EncodeKey(frames[6].to_string_view());
      const std::shared_ptr<const Acl> acl = acl_.Get();
      if (const Principal* p = acl->ByKey(key); p != nullptr) {
        v.allow = true;
        v.text = "OK";
        v.user_id = key;
        v.principal = p->name;
      } else {
        v.text = "public key " + key + " is not in the broker's ACL";
      }
    }
  }

  // Counted before the reply: the reply lets the connection proceed (or
  // fail), and whoever watches the counters must find this decision in
  // them as soon as its effect is visible.
  if (v.allow) {
    allowed_++;
    Logger("auth")->debug("connection from {} authenticated as principal '{}'", address,
                          v.principal);
  } else {
    denied_++;
    refusals_.Warn("refused a connection from " + address + ": " + v.text);
  }

  const std::string request_id = frames.size() > 1 ? frames[1].to_string() : std::string();
  try {
    socket_.send(zmq::buffer(std::string_view("1.0")), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(std::string_view(v.allow ? "200" : "400")), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(v.text), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(v.user_id), zmq::send_flags::sndmore);
    socket_.send(zmq::message_t(), zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    Logger("auth")->error("ZAP handler reply failed: {}", e.what());
  }
}

}  // namespace txmq::broker::auth
