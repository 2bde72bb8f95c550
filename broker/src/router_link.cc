#include "broker/src/router_link.h"

#include "protocol/src/log.h"

namespace txmq::broker {

bool RouterLink::Send(const std::string& routing_id, wire::OutFrame& frame) {
  zmq::message_t payload = frame.Encode();
  try {
    auto first =
        router_.send(zmq::buffer(routing_id), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    if (!first) return false;
    // Once the routing frame went out the payload cannot be refused for
    // lack of room (ZeroMQ queues whole multipart messages).
    router_.send(payload, zmq::send_flags::dontwait);
    return true;
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH: the client disconnected (ROUTER_MANDATORY says so).
    if (e.num() != EHOSTUNREACH) {
      Logger("broker")->warn("send to client {} failed: {}", routing_id, e.what());
    }
    return false;
  }
}

}  // namespace txmq::broker
