// The server's ClientLink: frames to clients go out on the ROUTER socket.
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

  bool Send(const std::string& routing_id, wire::OutFrame& frame) override;

 private:
  zmq::socket_t& router_;
};

}  // namespace txmq::broker
