#include "protocol/src/client_socket.h"

namespace txmq::net {

namespace {

constexpr int kHighWaterMark = 100'000;

}  // namespace

Result<ClientSocket> OpenClientSocket(zmq::context_t& context, const std::string& url,
                                      const ClientSocketOptions& options) {
  ClientSocket s;
  try {
    s.socket = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
    zmq::socket_t& socket = *s.socket;
    socket.set(zmq::sockopt::routing_id, options.routing_id);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::immediate, 1);
    socket.set(zmq::sockopt::sndhwm, kHighWaterMark);
    socket.set(zmq::sockopt::rcvhwm, kHighWaterMark);
    socket.set(zmq::sockopt::heartbeat_ivl, 1000);
    socket.set(zmq::sockopt::heartbeat_timeout, 3000);
    socket.set(zmq::sockopt::reconnect_ivl, 100);
    socket.set(zmq::sockopt::reconnect_ivl_max, 2000);
    if (options.curve.enabled()) {
      socket.set(zmq::sockopt::curve_serverkey, options.curve.server_key);
      socket.set(zmq::sockopt::curve_publickey, options.curve.public_key);
      socket.set(zmq::sockopt::curve_secretkey, options.curve.secret_key);
    }
    // Learn at once when the TCP connection drops: replies to what was
    // sent on it will never come, so those calls need not wait out their
    // whole timeout. Connects and refused attempts feed WaitConnected().
    // Handshake events say whether the broker took our key.
    if (zmq_socket_monitor(socket.handle(), options.monitor_endpoint.c_str(),
                           ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED |
                               ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0) {
      s.monitor = std::make_unique<zmq::socket_t>(context, zmq::socket_type::pair);
      s.monitor->connect(options.monitor_endpoint);
    }
    socket.connect(url);
  } catch (const zmq::error_t& e) {
    CloseClientSocket(s);
    return Status::InvalidArgument("cannot connect to broker '" + url + "': " + e.what());
  }
  return s;
}

void CloseClientSocket(ClientSocket& s) {
  if (!s.socket) return;
  if (s.monitor) {
    zmq_socket_monitor(s.socket->handle(), nullptr, 0);
    s.monitor->close();
    s.monitor.reset();
  }
  s.socket->close();
  s.socket.reset();
}

}  // namespace txmq::net
