// What a client's socket monitor last said about its TCP connection to the
// broker, so a caller can learn "nothing listens there" at once instead of
// waiting out a request's deadline (Connection::WaitConnected).
//
// An attempt that fails while not connected (ZMQ_EVENT_CONNECT_RETRIED:
// refused, unreachable) means nothing listens at the address now. ZeroMQ
// keeps retrying, and a later ZMQ_EVENT_CONNECTED clears it. The first
// ZMQ_EVENT_CONNECT_RETRIED after a ZMQ_EVENT_DISCONNECTED is not a failed
// attempt: ZeroMQ reports the reconnect it schedules that way. A broker
// that closed the connection (over its connection limit, restarting) is
// not "nothing listens" until an attempt fails.
//
// Thread safety: OnEvent runs on the thread that reads the monitor socket;
// state() and Wait() may be called from any thread.
#pragma once

#include <zmq.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace txmq::net {

class LinkState {
 public:
  enum class Link { kConnecting, kConnected, kRefused };

  // A ZMQ_EVENT_* the socket monitor reported; others are ignored.
  void OnEvent(uint16_t event) {
    std::lock_guard<std::mutex> lock(mu_);
    if (event == ZMQ_EVENT_CONNECTED) {
      link_ = Link::kConnected;
      reconnect_scheduled_ = false;
    } else if (event == ZMQ_EVENT_DISCONNECTED) {
      link_ = Link::kConnecting;
      reconnect_scheduled_ = true;
    } else if (event == ZMQ_EVENT_CONNECT_RETRIED && reconnect_scheduled_) {
      reconnect_scheduled_ = false;
    } else if (event == ZMQ_EVENT_CONNECT_RETRIED && link_ != Link::kConnected) {
      link_ = Link::kRefused;
    }
    changed_.notify_all();
  }

  Link state() const {
    std::lock_guard<std::mutex> lock(mu_);
    return link_;
  }

  // The state once it is not kConnecting, or kConnecting after `timeout`.
  Link Wait(std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, timeout, [&] { return link_ != Link::kConnecting; });
    return link_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  Link link_ = Link::kConnecting;     // guarded by mu_
  bool reconnect_scheduled_ = false;  // guarded by mu_; the next RETRIED is no failure
};

}  // namespace txmq::net
