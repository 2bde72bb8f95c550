// The server's ClientLink: frames to clients go out on the ROUTER socket.
//
// Each frame is encoded into a buffer of its own that travels with its
// reply-budget ticket (limits.h) into ZeroMQ without a copy; ZeroMQ frees
// both, on its I/O thread, once the bytes were written to the kernel or
// dropped with the connection. So the budget counts exactly what the
// process still holds for each client.
#pragma once

#include <string>
#include <zmq.hpp>

#include "broker/src/core.h"

namespace txmq::broker {

// Thread safety: the thread that owns the socket (the core thread) only.
class RouterLink final : public ClientLink {
 public:
  // `router` must outlive the link.
  explicit RouterLink(zmq::socket_t& router) : router_(router) {}

  bool Send(const std::string& routing_id, wire::OutFrame& frame, ReplyTicket ticket) override;

 private:
  zmq::socket_t& router_;
};

}  // namespace txmq::broker
