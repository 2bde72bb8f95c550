// How a thread other than the core (the HTTP console, http/console_api.h)
// makes an operator request without touching core-thread state: it hands
// an encoded request (the Envelope txmqctl would send on its connection)
// here, the core thread (which polls fd() next to its socket) takes it,
// serves it through the same dispatch, rights check and handlers as a
// request from the network (Server::Dispatch), and the reply comes back
// here, where the asker wakes with it.
//
// Why the wire format and not a call into the services: the console then
// goes through exactly the path txmqctl goes through, with its checks and
// its audit lines, and the core needs no second set of entry points. Why
// not a ZeroMQ connection to our own socket: with CURVE the console would
// need a key of its own, and whoever holds the HTTP token would be a
// principal the ACL does not name. Requests taken from here run as the
// built-in principal "http-console" (auth/guard.h), and their routing id is
// kConsoleRoutingId, which no ZeroMQ peer can be given (libzmq's own ids
// are 5 bytes; the core drops network requests that claim this one).
//
// Replies are matched to askers by request id: askers choose ids that no
// other waiting request uses (a clash is refused). An asker that gave up
// (timeout) leaves a late reply to be dropped.
//
// Thread safety: Call and Close from any thread; fd, Take and Answer on
// the core thread. mu_ guards the rest.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/src/event_fd.h"
#include "txmq/status.h"

namespace txmq::broker {

inline constexpr std::string_view kConsoleRoutingId{"\0txmq-console", 13};

class OperatorMailbox {
 public:
  // Requests waiting for the core at most; beyond, Call says OVERLOADED.
  static constexpr size_t kMaxWaiting = 64;

  struct Request {
    uint64_t request_id = 0;
    std::string peer;   // who asked (the HTTP client's address): the audit line's client
    std::string frame;  // the encoded Envelope; its request id is request_id
  };

  OperatorMailbox() = default;
  OperatorMailbox(const OperatorMailbox&) = delete;
  OperatorMailbox& operator=(const OperatorMailbox&) = delete;

  // Any thread: serves `request.frame` (an encoded Envelope with request
  // id `request.request_id`) and returns the encoded reply. UNAVAILABLE
  // when the core did not answer within `timeout` or stopped (the status
  // says why), OVERLOADED when kMaxWaiting requests wait already,
  // INVALID_ARGUMENT when another waiting request has the same id.
  Result<std::string> Call(Request request, std::chrono::milliseconds timeout);

  // Core thread: the descriptor to poll for requests.
  int fd() const { return wake_.fd(); }
  // Core thread, when fd() is readable: the requests waiting, oldest first.
  std::vector<Request> Take();
  // Core thread: the reply to request `request_id` (dropped when its asker
  // gave up).
  void Answer(uint64_t request_id, std::string reply);
  // The core stopped: calls fail with `why` (UNAVAILABLE) from now on.
  void Close(const Status& why);

 private:
  EventFd wake_;
  std::mutex mu_;
  std::condition_variable answered_;
  std::deque<Request> waiting_;                           // not yet taken (guarded by mu_)
  std::map<uint64_t, std::optional<std::string>> asked_;  // askers still waiting (guarded by mu_)
  bool closed_ = false;                                   // guarded by mu_
  Status close_reason_;                                   // guarded by mu_
};

}  // namespace txmq::broker
