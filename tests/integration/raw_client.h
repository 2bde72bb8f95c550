// A bare DEALER socket speaking the wire protocol by hand, for tests that
// must send what the client library never would.
#pragma once

#include <optional>
#include <string>
#include <zmq.hpp>

#include "protocol/src/codec.h"
#include "protocol/src/util.h"

namespace txmq::testing {

class RawClient {
 public:
  // `linger_ms`: how long closing waits for unsent requests to leave.
  explicit RawClient(const std::string& endpoint, std::string id = NewUuidV7(), int linger_ms = 0)
      : socket_(context_, zmq::socket_type::dealer), id_(std::move(id)) {
    socket_.set(zmq::sockopt::routing_id, id_);
    socket_.set(zmq::sockopt::linger, linger_ms);
    socket_.connect(endpoint);
  }

  const std::string& id() const { return id_; }

  void SendBytes(const void* data, size_t size) {
    socket_.send(zmq::const_buffer(data, size), zmq::send_flags::none);
  }
  void Send(wire::OutFrame& frame) { socket_.send(frame.Encode(), zmq::send_flags::none); }

  // The next reply, or nothing within `timeout`.
  std::optional<wire::Frame> Receive(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
    zmq::message_t msg;
    if (!socket_.recv(msg, zmq::recv_flags::dontwait)) return std::nullopt;
    auto frame = wire::DecodeFrame(std::move(msg), {.max_frame_bytes = 64 << 20});
    if (!frame.ok()) return std::nullopt;
    return std::move(frame.value());
  }

  // Sends `frame` and returns the reply's Status (OK for a non-error).
  Status Call(wire::OutFrame& frame) {
    Send(frame);
    auto reply = Receive();
    if (!reply) return Status::Timeout("no reply");
    return wire::StatusOf(reply->envelope());
  }

  zmq::socket_t& socket() { return socket_; }

 private:
  zmq::context_t context_{1};
  zmq::socket_t socket_;
  std::string id_;
};

}  // namespace txmq::testing
