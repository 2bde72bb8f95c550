// ZAP request and reply (RFC 27), one ZeroMQ frame each after the REP
// envelope:
//
//   request: "1.0" | request id | domain | address | routing id |
//            mechanism | credentials   (CURVE: one frame, the 32-byte key)
//   reply:   "1.0" | request id | "200" or "400" | status text |
//            user id (the Z85 key when allowed) | metadata (empty)
#include "broker/src/cluster/zap_allow_list.h"

#include <vector>

#include "protocol/src/curve_keys.h"
#include "protocol/src/log.h"

namespace txmq::cluster {

ZapAllowList::ZapAllowList(zmq::context_t& context, std::map<std::string, std::string> keys)
    : keys_(std::move(keys)), socket_(context, zmq::socket_type::rep) {}

Result<std::unique_ptr<ZapAllowList>> ZapAllowList::Bind(zmq::context_t& context,
                                                         std::map<std::string, std::string> keys) {
  std::unique_ptr<ZapAllowList> zap(new ZapAllowList(context, std::move(keys)));
  try {
    zap->socket_.set(zmq::sockopt::linger, 0);
    zap->socket_.bind("inproc://zeromq.zap.01");
  } catch (const zmq::error_t& e) {
    return Status::Unavailable(std::string("cannot bind the replication ZAP handler: ") + e.what());
  }
  return zap;
}

size_t ZapAllowList::ServeWaiting() {
  size_t served = 0;
  while (true) {
    std::vector<zmq::message_t> request;
    try {
      while (true) {
        zmq::message_t part;
        if (!socket_.recv(part, zmq::recv_flags::dontwait)) break;
        const bool more = part.more();
        request.push_back(std::move(part));
        if (!more) break;
      }
    } catch (const zmq::error_t& e) {
      Logger("cluster")->error("replication ZAP receive failed: {}", e.what());
      return served;
    }
    if (request.empty()) return served;
    Answer(request);
    ++served;
  }
}

void ZapAllowList::Answer(std::vector<zmq::message_t>& request) {
  bool allow = false;
  std::string text;
  std::string user_id;
  if (request.size() < 6 || request[0].to_string_view() != "1.0") {
    text = "malformed ZAP request";
  } else if (request[2].to_string_view() != kReplicationZapDomain) {
    text = "not a replication link";
  } else if (request[5].to_string_view() != "CURVE") {
    text = "replication links require CURVE";
  } else if (request.size() != 7 || request[6].size() != 32) {
    text = "malformed CURVE credentials";
  } else {
    const std::string key = curve::EncodeKey(request[6].to_string_view());
    if (keys_.count(key) > 0) {
      allow = true;
      text = "OK";
      user_id = key;
    } else {
      text = "public key " + key + " is not a member of this group";
    }
  }
  // Counted before the reply: once the reply is out the link proceeds or
  // fails, and whoever watches the counters must already find it there.
  if (allow) {
    ++allowed_;
  } else {
    ++denied_;
    refusals_.Warn("refused a replication connection: " + text);
  }
  const std::string request_id = request.size() > 1 ? request[1].to_string() : std::string();
  try {
    socket_.send(zmq::buffer(std::string_view("1.0")), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(std::string_view(allow ? "200" : "400")), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(text), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(user_id), zmq::send_flags::sndmore);
    socket_.send(zmq::message_t(), zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    Logger("cluster")->error("replication ZAP reply failed: {}", e.what());
  }
}

}  // namespace txmq::cluster
