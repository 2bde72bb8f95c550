// What a client's socket monitor last said about its connection to the
// broker, so a caller learns "nothing listens there" or "the broker refused
// our key" at once instead of waiting out a request's deadline
// (Connection::WaitConnected, and calls that fail early).
//
// - kConnected: the ZMTP handshake succeeded (with CURVE: both keys
//   accepted). A drop makes it kConnecting again.
// - kRefused: an attempt failed while not connected
//   (ZMQ_EVENT_CONNECT_RETRIED: refused, unreachable): nothing listens at
//   the address now. ZeroMQ keeps retrying; a later handshake clears it.
//   The first ZMQ_EVENT_CONNECT_RETRIED after a ZMQ_EVENT_DISCONNECTED is
//   not a failed attempt: ZeroMQ reports the reconnect it schedules that
//   way. A broker that closed the connection (over its connection limit,
//   restarting) is not "nothing listens" until an attempt fails.
// - kKeyRefused: the broker's ZAP handler refused this client's CURVE key.
//   Final: libzmq does not reconnect after it.
// - kMechanismMismatch: one side uses CURVE and the other not. Final too.
// - kProtocolError: another ZMTP protocol failure in the handshake. Final.
// - kHandshakeFailed: the handshake broke off (e.g. the broker could not
//   open our hello: a wrong server key). ZeroMQ retries; kept until a
//   handshake succeeds, so a caller can say why nothing works.
//
// Thread safety: OnEvent runs on the thread that reads the monitor socket;
// the readers may be called from any thread.
#pragma once

#include <zmq.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace txmq::net {

class LinkState {
 public:
  enum class Link {
    kConnecting,
    kConnected,
    kRefused,
    kKeyRefused,
    kMechanismMismatch,
    kProtocolError,
    kHandshakeFailed,
  };

  // A ZMQ_EVENT_* the socket monitor reported, with its value; others are
  // ignored.
  void OnEvent(uint16_t event, uint32_t value = 0) {
    std::lock_guard<std::mutex> lock(mu_);
    if (IsFinal(link_)) return;
    switch (event) {
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        link_ = Link::kConnected;
        reconnect_scheduled_ = false;
        break;
      case ZMQ_EVENT_DISCONNECTED:
        if (link_ == Link::kConnected) link_ = Link::kConnecting;
        reconnect_scheduled_ = true;
        break;
      case ZMQ_EVENT_CONNECT_RETRIED:
        if (reconnect_scheduled_) {
          reconnect_scheduled_ = false;
        } else if (link_ != Link::kConnected && link_ != Link::kHandshakeFailed) {
          link_ = Link::kRefused;
        }
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        link_ = Link::kKeyRefused;
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        link_ = value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH ? Link::kMechanismMismatch
                                                                    : Link::kProtocolError;
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        link_ = Link::kHandshakeFailed;
        break;
      default:
        return;
    }
    changed_.notify_all();
  }

  // The socket now talks to another broker: nothing is known about it yet.
  void Reset() {
    std::lock_guard<std::mutex> lock(mu_);
    link_ = Link::kConnecting;
    reconnect_scheduled_ = false;
    changed_.notify_all();
  }

  Link state() const {
    std::lock_guard<std::mutex> lock(mu_);
    return link_;
  }

  // The link can never carry a request (libzmq gave up on it).
  static bool IsFinal(Link link) {
    return link == Link::kKeyRefused || link == Link::kMechanismMismatch ||
           link == Link::kProtocolError;
  }

  // The state once it is decided (connected, refused, a final failure), or
  // whatever it is after `timeout` (kConnecting, kHandshakeFailed: ZeroMQ
  // still retries those).
  Link Wait(std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, timeout, [&] {
      return link_ != Link::kConnecting && link_ != Link::kHandshakeFailed;
    });
    return link_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  Link link_ = Link::kConnecting;     // guarded by mu_
  bool reconnect_scheduled_ = false;  // guarded by mu_; the next RETRIED is no failure
};

}  // namespace txmq::net
