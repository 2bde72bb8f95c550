// The DEALER a client talks to one broker through, and the monitor socket
// that reports its connection's events (link_state.h). Connection opens a
// new one each time it moves to another broker of a group.
//
// Thread safety: none; the thread that opened them (the connection's I/O
// thread, or Open before it starts) is their only user.
#pragma once

#include <memory>
#include <string>
#include <zmq.hpp>

#include "protocol/src/curve_keys.h"
#include "txmq/status.h"

namespace txmq::net {

struct ClientSocket {
  std::unique_ptr<zmq::socket_t> socket;
  std::unique_ptr<zmq::socket_t> monitor;  // null when libzmq could not start one
};

struct ClientSocketOptions {
  std::string routing_id;        // the same on every socket of a connection
  curve::ClientKeys curve{};     // empty: plaintext
  std::string monitor_endpoint;  // inproc://, unique within the context
};

// A socket connected to `url` (ZeroMQ connects in the background);
// INVALID_ARGUMENT naming the URL when ZeroMQ refuses it.
Result<ClientSocket> OpenClientSocket(zmq::context_t& context, const std::string& url,
                                      const ClientSocketOptions& options);

// Stops the monitor and closes both; pending outgoing frames are dropped.
void CloseClientSocket(ClientSocket& s);

}  // namespace txmq::net
