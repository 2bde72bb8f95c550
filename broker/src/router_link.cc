#include "broker/src/router_link.h"

#include <memory>

#include "protocol/src/log.h"

namespace txmq::broker {

namespace {

// One frame's bytes and the reservation they hold, freed together.
struct OutBuffer {
  std::unique_ptr<capnp::word[]> words;
  ReplyTicket ticket;
};

// ZeroMQ's free function: runs on an I/O thread (or on the core thread when
// the send is refused) once the frame's bytes are no longer needed.
void FreeOutBuffer(void* /*data*/, void* hint) { delete static_cast<OutBuffer*>(hint); }

}  // namespace

bool RouterLink::Send(const std::string& routing_id, wire::OutFrame& frame, ReplyTicket ticket) {
  const size_t bytes = frame.EncodedBytes();
  auto buffer = std::make_unique<OutBuffer>();
  buffer->words = std::make_unique_for_overwrite<capnp::word[]>(bytes / sizeof(capnp::word));
  frame.EncodeInto(kj::arrayPtr(buffer->words.get(), bytes / sizeof(capnp::word)));
  buffer->ticket = std::move(ticket);
  void* data = buffer->words.get();
  // From here the message owns the buffer (and frees it even if the send
  // below fails).
  zmq::message_t payload(data, bytes, &FreeOutBuffer, buffer.release());
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
      // Routing ids are secrets (clients.h): never logged.
      Logger("broker")->warn("send to a client failed: {}", e.what());
    }
    return false;
  }
}

}  // namespace txmq::broker
