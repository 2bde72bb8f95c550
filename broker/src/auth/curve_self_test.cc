#include "broker/src/auth/curve_self_test.h"

#include <cstring>

#include "protocol/src/curve_keys.h"
#include "protocol/src/util.h"

namespace txmq::broker::auth {

std::string LocalEndpointOf(const std::string& endpoint) {
  for (const auto& [any, local] :
       {std::pair<std::string, std::string>{"tcp://0.0.0.0:", "tcp://127.0.0.1:"},
        {"tcp://[::]:", "tcp://[::1]:"},
        {"tcp://*:", "tcp://127.0.0.1:"}}) {
    if (endpoint.rfind(any, 0) == 0) return local + endpoint.substr(any.size());
  }
  return endpoint;
}

Status ProveUnknownKeyRefused(zmq::context_t& context, const std::string& endpoint,
                              const std::string& server_public_key,
                              std::chrono::milliseconds timeout) {
  auto stranger = curve::NewKeyPair();
  if (!stranger.ok()) return stranger.status();
  const std::string target = LocalEndpointOf(endpoint);
  const std::string monitor_endpoint = "inproc://txmq-curve-self-test";
  try {
    zmq::socket_t client(context, zmq::socket_type::dealer);
    client.set(zmq::sockopt::linger, 0);
    client.set(zmq::sockopt::curve_serverkey, server_public_key);
    client.set(zmq::sockopt::curve_publickey, stranger->public_key);
    client.set(zmq::sockopt::curve_secretkey, stranger->secret_key);
    if (target.rfind("tcp://[", 0) == 0) client.set(zmq::sockopt::ipv6, 1);
    if (zmq_socket_monitor(client.handle(), monitor_endpoint.c_str(),
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0) {
      return Status::Internal(std::string("CURVE self-test: cannot monitor its socket: ") +
                              zmq_strerror(zmq_errno()));
    }
    zmq::socket_t monitor(context, zmq::socket_type::pair);
    monitor.set(zmq::sockopt::linger, 0);
    monitor.connect(monitor_endpoint);
    client.connect(target);

    std::string seen;
    const SteadyTime deadline = SteadyClock::now() + timeout;
    Status verdict = Status::Unavailable("CURVE self-test: no handshake verdict from " + target +
                                         " within " + FormatDurationMs(timeout.count()) +
                                         "; cannot prove that unknown keys are refused");
    while (SteadyClock::now() < deadline) {
      zmq::pollitem_t item{monitor.handle(), 0, ZMQ_POLLIN, 0};
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      if (zmq::poll(&item, 1, std::max(left, std::chrono::milliseconds(1))) == 0) continue;
      zmq::message_t event, address;
      if (!monitor.recv(event, zmq::recv_flags::dontwait)) continue;
      if (event.more()) (void)monitor.recv(address, zmq::recv_flags::dontwait);
      uint16_t id = 0;
      uint32_t value = 0;
      if (event.size() >= 6) {
        std::memcpy(&id, event.data(), 2);
        std::memcpy(&value, static_cast<const char*>(event.data()) + 2, 4);
      }
      if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        verdict = value == 400 ? Status::OK()
                               : Status::Internal("CURVE self-test: the ZAP handler answered " +
                                                  std::to_string(value) + ", not 400");
        break;
      }
      if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        verdict = Status::Internal(
            "CURVE self-test: a client with an unknown key was let in at " + target +
            "; authentication is not in force (is another ZAP handler bound in this process?)");
        break;
      }
      // A protocol failure or a dropped connection says nothing either way;
      // ZeroMQ reconnects and the next handshake may answer.
      seen = id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? "a protocol error" : "a dropped handshake";
    }
    zmq_socket_monitor(client.handle(), nullptr, 0);
    if (!verdict.ok() && verdict.code() == StatusCode::kUnavailable && !seen.empty()) {
      return Status::Unavailable(verdict.message() + " (last seen: " + seen + ")");
    }
    return verdict;
  } catch (const zmq::error_t& e) {
    return Status::Internal(std::string("CURVE self-test against ") + target +
                            " failed: " + e.what());
  }
}

}  // namespace txmq::broker::auth
