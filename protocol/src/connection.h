// The client side of the wire: one DEALER socket to the broker, owned by one
// I/O thread, shared by every caller of a producer, consumer or txmqctl.
//
// Threads: Open() starts the I/O thread ("txmq-io"). It alone touches the
// socket, the table of pending calls and the heartbeat timer. Callers hand
// it encoded requests through a mutex-guarded queue and an eventfd; it runs
// each call's completion on itself, so completions must be quick and must
// not block (hand work to another thread instead).
//
// Delivery: requests wait (until their deadline) while the broker is not
// reachable; ZeroMQ reconnects by itself, and the socket keeps the same
// routing id, so the broker recognises the client after a reconnect.
//
// A replicated broker group: `broker` may list several URLs
// (broker_list.h). A node that does not lead answers NOT_LEADER, naming the
// leader when it knows it; the I/O thread then reconnects the socket to that
// leader (or to the next listed URL), says hello there, and sends again every
// call the node refused, in request order, with its original content (so a
// send keeps its message id) under a new request id (a late answer to the
// old one is ignored), and its original deadline: the call's timeout
// bounds the whole search. A node answering NOT_LEADER stored nothing, so
// sending those again is safe for any call. When the link to the current
// broker fails (refused, or not connected for 2 s), the socket moves to the
// next listed URL; calls already sent on the lost link fail TIMEOUT as
// before (their outcome is unknown; the producer resends a send with the
// same message id and the broker's dedup answers). The same happens, with
// more than one URL, when a call sent to the current broker gets no answer
// by its deadline or is answered UNAVAILABLE: a paused broker keeps its TCP
// connection, so the link alone would hold the client until ZeroMQ's
// heartbeat drops it. With one URL such a call just fails, as ever.
// broker_picker.h has the rules and the backoff.
//
// Identity: the client id (hello) is a public name, shown by txmqctl. The
// socket's routing id is something else: 128 random bits made per
// Connection and never shown, because the broker's socket hands a routing
// id to whichever connection presents it last (that is what lets a client
// reconnect at once). Whoever knew another client's routing id would get
// that client's replies; nobody knows this one. A call
// that was never sent fails UNAVAILABLE (safe to retry); one sent but not
// answered in time fails TIMEOUT (the outcome is unknown, so retry only what
// is idempotent, such as a send with the same message id).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "protocol/src/codec.h"
#include "protocol/src/curve_keys.h"
#include "protocol/txmq.capnp.h"
#include "txmq/status.h"

namespace txmq::net {

struct ConnectionOptions {
  // Broker endpoint, e.g. "tcp://127.0.0.1:7800", or a replicated group's
  // comma-separated bootstrap list (broker_list.h).
  std::string broker = "tcp://127.0.0.1:7800";
  // Follow NOT_LEADER answers and move on from a broker that cannot be
  // reached (see above). False: a NOT_LEADER answer completes the call.
  bool follow_leader = true;
  // The name this client registers under (hello); a fresh UUIDv7 when empty.
  std::string client_id{};
  // The client instance this connection is one of (hello), when it has
  // connections to several broker groups: one name per process (brokers
  // share queues among instances); empty: the client id.
  std::string instance{};
  wire::Role role = wire::Role::ADMIN;
  // Producer or consumer group announced in hello.
  std::string group{};
  // Shown to operators ("txmq-producer 0.1.0").
  std::string software = "txmq";
  // A producer that answers transaction checks (needs an IncomingCallFn).
  bool checker = false;
  // CURVE: this client's key pair and the broker's public key (see
  // curve::LoadClientKeys); empty for plaintext. A broker that refuses
  // the key, or disagrees on CURVE, fails every call at once with
  // PERMISSION_DENIED (or FAILED_PRECONDITION) saying so.
  curve::ClientKeys curve{};
  // How often the client says it is alive. The broker forgets a client it
  // has not heard from for a few intervals (its --client-timeout).
  std::chrono::milliseconds heartbeat_interval{1000};
  // Largest frame accepted from the broker.
  wire::DecodeLimits limits{.max_frame_bytes = 64 * 1024 * 1024};
};

// Completion of a call: the reply frame, or why there is none (a broker
// Error reply arrives as its Status).
using ReplyFn = std::function<void(Result<wire::Frame>)>;
// A call the broker started (e.g. a transaction check). Runs on the I/O
// thread; answer with Connection::Reply using the same request id.
using IncomingCallFn = std::function<void(wire::Frame)>;

class Connection {
 public:
  // Validates options and starts the I/O thread; does not wait for the
  // broker (ZeroMQ connects in the background).
  static Result<std::unique_ptr<Connection>> Open(ConnectionOptions options,
                                                  IncomingCallFn on_call = nullptr);
  // Says goodbye (bounded wait), stops the I/O thread; calls still pending
  // complete with UNAVAILABLE.
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // A request with a fresh request id. Thread-safe.
  wire::OutFrame NewRequest();
  // Sends `request`; `done` runs exactly once, on the I/O thread, or at
  // once on the caller's thread when the request is refused without being
  // sent (TOO_LARGE above the broker's frame limit, UNAVAILABLE once
  // closed). Thread-safe.
  void Call(wire::OutFrame request, std::chrono::milliseconds timeout, ReplyFn done);
  // Call and wait. Thread-safe; never call it from a completion.
  Result<wire::Frame> CallSync(wire::OutFrame request, std::chrono::milliseconds timeout);
  // Answers a broker-initiated call; `reply` must carry the call's request id.
  void Reply(wire::OutFrame reply);

  // Waits until the socket holds a connection to the broker (handshake
  // done), at most `timeout`, for a tool that should not wait out a long
  // deadline when nothing listens at the address. OK once connected;
  // UNAVAILABLE "no broker at URL (connection refused)" as soon as an
  // attempt failed while not connected; PERMISSION_DENIED when the broker
  // refused this client's key or wants CURVE from a client without one;
  // TIMEOUT if nothing was decided (say, a host that drops packets; the
  // message says so when handshakes kept failing). Thread-safe; never call
  // it from a completion.
  Status WaitConnected(std::chrono::milliseconds timeout);

  // Sends goodbye and waits up to `timeout` for the broker to confirm, so it
  // releases this client's leases at once. Idempotent.
  void Close(std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));

  // Whether the caller runs on this connection's I/O thread (a completion):
  // there the connection must not be destroyed, which waits for that thread.
  bool OnIoThread() const;

  const std::string& client_id() const;
  // As configured (the whole list).
  const std::string& broker() const;
  // The broker the socket talks to now. Thread-safe.
  std::string current_broker() const;
  // Max message bytes the broker announced in its hello reply (0 = not yet).
  uint32_t broker_max_message_bytes() const;
  // Largest request frame the broker takes (announced, or derived; see
  // wire::MaxFrameBytes).
  size_t broker_max_frame_bytes() const;

  class Impl;

 private:
  explicit Connection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace txmq::net
