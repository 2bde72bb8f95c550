// Connection's implementation, shared by connection.cc (start and stop,
// calls, hello and heartbeats), connection_io.cc (the I/O thread's loop:
// sending, receiving, deadlines) and connection_failover.cc (following
// the broker: the socket monitor, NOT_LEADER answers, silent brokers,
// moving the socket).
//
// Thread "txmq-io" (started in Connection::Open) owns: socket_, pending_,
// deadlines_, unsent_, the heartbeat timer, picker_ (which broker of a
// group), link_since_, silent_. Shared with callers, under mu_:
// inbox_ (requests to send) and closing_; under url_mu_: current_url_.
// link_ (what the socket monitor last said about the TCP connection)
// guards itself.
#pragma once

#include "protocol/src/connection.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "protocol/src/broker_list.h"
#include "protocol/src/broker_picker.h"
#include "protocol/src/client_socket.h"
#include "protocol/src/event_fd.h"
#include "protocol/src/link_state.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::net {

// A group's client rotates through its list while an election runs and
// waits one backoff on each node before asking: a shorter cap finds the
// new leader sooner (TxmqdFailover: kill -> next ack p50 4.7 s with the
// 1 s cap, 4.0 s with this), for at most two requests a second per client
// while nobody leads. One URL keeps the longer cap, as before.
inline BrokerPicker::Options PickerOptions(size_t urls) {
  BrokerPicker::Options options;
  if (urls > 1) options.max_backoff = std::chrono::milliseconds(500);
  return options;
}

struct Outgoing {
  zmq::message_t bytes;
  uint64_t request_id = 0;
  ReplyFn done;  // empty for replies to broker calls
  SteadyTime deadline;
  bool expects_reply = false;
  bool hello = false;
};

struct Pending {
  ReplyFn done;
  SteadyTime deadline;
  bool sent = false;
  zmq::message_t bytes;  // shares the request's buffer, to send it again elsewhere
  bool hello = false;
};

class Connection::Impl {
 public:
  bool OnIoThread() const { return std::this_thread::get_id() == thread_.get_id(); }
  Impl(ConnectionOptions options, std::vector<std::string> urls, IncomingCallFn on_call)
      : options_(std::move(options)),
        picker_(urls, PickerOptions(urls.size())),
        on_call_(std::move(on_call)),
        log_(Logger("client")),
        context_(1) {}

  ~Impl() { Stop(); }

  Status Start();

  // A DEALER connected to `url` (with its monitor), in place of the one
  // before, if any. A new socket rather than disconnect + connect: with
  // ZMQ_IMMEDIATE, zmq_disconnect leaves the old connection's pipe
  // writable until the socket next processes commands, so the first
  // requests meant for the new broker could still leave for the old one.
  // The routing id stays, so a broker knows the client again.
  Status OpenSocket(const std::string& url);

  void CloseSocket();
  void Stop();

  wire::OutFrame NewRequest() { return wire::OutFrame(next_request_id_.fetch_add(1)); }

  void Enqueue(Outgoing out);
  void Call(wire::OutFrame request, std::chrono::milliseconds timeout, ReplyFn done);
  void Reply(wire::OutFrame reply);
  void Close(std::chrono::milliseconds timeout);
  Status WaitConnected(std::chrono::milliseconds timeout);

  // A group's list: a refused URL is not an answer, since the I/O thread
  // moves on to the next one; wait for any connection.
  Status WaitAnyConnected(std::chrono::milliseconds timeout);

  std::string current_url() const;

  const ConnectionOptions& options() const { return options_; }
  SteadyTime last_heard() const { return SteadyTime(SteadyClock::duration(last_heard_ns_.load())); }
  uint32_t broker_max_message_bytes() const { return broker_max_message_bytes_.load(); }

  // The broker's frame limit: as announced; derived from its message limit
  // for a broker that does not announce one; the default's before hello.
  size_t FrameLimit() const;

 private:
  void QueueHello();
  Outgoing MakeHello();

  // I/O thread: the configured interval, or a quarter of the broker's client
  // timeout when that is shorter, so a few late heartbeats on a busy machine
  // do not make the broker forget a live client (and end its leases).
  std::chrono::milliseconds HeartbeatInterval() const;

  void QueueHeartbeat();

  // I/O thread: move requests from callers into the pending table.
  void TakeInbox();

  void Register(Outgoing out);

  // A call's entry in the pending table (nothing for a reply).
  void Track(Outgoing& out);

  void SendUnsent();
  void Complete(uint64_t request_id, Result<wire::Frame> result);
  void ReceiveAll();
  void ExpireDeadlines(SteadyTime now);
  void Run();

  // I/O thread: the connection to the broker dropped. Calls already sent
  // on it fail TIMEOUT (their outcome is unknown: the broker may have
  // processed them); calls not yet sent wait for the reconnect.
  void OnMonitorEvent();

  // I/O thread: the broker answered a call NOT_LEADER naming `leader`.
  void OnNotLeader(const std::string& leader, const Status& status);

  // I/O thread: leave a broker whose link failed, if there is somewhere
  // else to go.
  void CheckLink(SteadyTime now);

  // I/O thread: a group's client leaves a broker that left a call
  // unanswered or answered UNAVAILABLE (silent_ says which).
  void LeaveSilentBroker(SteadyTime now);

  bool MayMoveOn() const { return options_.follow_leader && picker_.bootstrap().size() > 1; }

  // I/O thread: calls sent on the current link fail TIMEOUT (the broker may
  // have done them; a send is retried with its message id and dedup
  // answers), the socket moves to `to` and says hello there first.
  void MoveOn(const std::string& to, SteadyTime now, const std::string& why);

  // I/O thread: a fresh hello goes out before anything else (the broker
  // may not know this client); earlier hellos are forgotten.
  void SayHelloFirst();

  // I/O thread: talk to `to` from now on.
  void MoveSocket(const std::string& to, SteadyTime now);

  Status Refused() const;

  // Why a link in state `link` carries nothing; OK when it may.
  Status LinkStatus(LinkState::Link link) const;

  ConnectionOptions options_;
  BrokerPicker picker_;  // I/O thread only, once started
  IncomingCallFn on_call_;
  std::shared_ptr<spdlog::logger> log_;
  zmq::context_t context_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<zmq::socket_t> monitor_;  // disconnect events of socket_
  std::atomic<bool> has_monitor_{false};    // set before the I/O thread starts
  std::thread thread_;
  EventFd wake_;
  std::atomic<uint64_t> next_request_id_{1};
  std::atomic<uint32_t> broker_max_message_bytes_{0};
  std::atomic<uint32_t> broker_max_frame_bytes_{0};
  std::atomic<uint32_t> broker_client_timeout_ms_{0};  // from the broker's hello reply
  std::atomic<bool> closed_{false};
  std::atomic<int64_t> last_heard_ns_{0};

  LinkState link_;  // fed by the monitor, read by WaitConnected

  std::mutex mu_;
  std::deque<Outgoing> inbox_;  // guarded by mu_
  bool stopped_ = false;        // guarded by mu_
  bool io_polling_ = false;     // guarded by mu_: the I/O thread is in (or entering) poll
  bool io_woken_ = false;       // guarded by mu_: and the eventfd was written since

  mutable std::mutex url_mu_;
  std::string current_url_;  // guarded by url_mu_; picker_.current() for other threads

  // I/O thread only.
  Status last_not_leader_;        // the last NOT_LEADER answer, until a broker serves
  std::string silent_;            // why to leave the current broker ("": stay)
  SteadyTime link_since_;         // since when the current link is not connected (if it is not)
  std::string routing_id_;        // every socket's, so a broker knows the client again
  uint64_t sockets_opened_ = 0;   // names each socket's monitor endpoint
  bool unusable_socket_ = false;  // the current URL could not be connected to
  std::unordered_map<uint64_t, Pending> pending_;
  std::set<std::pair<SteadyTime, uint64_t>> deadlines_;
  std::deque<Outgoing> unsent_;
};

}  // namespace txmq::net
