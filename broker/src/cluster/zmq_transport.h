// ReplicationTransport over ZeroMQ TCP: what links the replicas of a group.
//
// Sockets. Every node binds one ROUTER, where every frame addressed to it
// arrives: a leader's requests on a follower, the followers' answers on the
// leader. Every node holds one DEALER per peer, connected to that peer's
// ROUTER, and Send(peer) writes to it: a leader's requests, and a
// follower's answers to its leader. Traffic is one way per socket, so
// neither side ever writes to a ROUTER: no routing ids to learn or forget,
// a restarted peer is just a DEALER that reconnects, and a node that is
// leader, then follower, then leader again keeps the same sockets. (One
// leader ROUTER dealing to every follower would need the follower's
// routing id before its first request, that is a connection in the other
// direction anyway.) A DEALER's routing id is "<node>/<64 random bits>",
// new for every socket: a restarted peer never collides with the pipe of
// its former self that the ROUTER may not yet have dropped, and no
// router_handover is needed (which would let one connection cut off
// another by presenting its id).
//
// Who a frame is from. Plaintext: the node part of the routing id, which
// must name a listed peer; anything else is refused (a check against
// mistakes, not against an attacker on the network). CURVE (secret_key
// set): the link is encrypted, the ROUTER admits only connections whose
// public key is a listed peer's (zap_allow_list.h), the sender is the peer
// that key belongs to, and a frame whose routing id names another node is
// refused: a member cannot speak for another. Refused frames are counted
// and dropped.
//
// Bounds. Send never blocks: a DEALER queues at most send_hwm frames and
// only to a connected peer (ZMQ_IMMEDIATE); past that, or with no
// connection, Send drops the frame and returns kUnavailable (the leader's
// resend_after covers it). The ROUTER holds at most receive_hwm frames per
// connection (libzmq stops reading that TCP stream beyond that) and refuses a
// frame over max_frame_bytes by closing that connection. So the memory a
// dead or slow peer can pin is about (send_hwm + receive_hwm) frames per
// peer plus kernel socket buffers. ZMTP heartbeats drop a connection whose
// peer stopped answering pings within heartbeat_timeout; DEALERs
// reconnect every reconnect_ivl (backing off to reconnect_ivl_max), so a
// follower restarted on the same endpoint is found again by itself.
//
// Threads: the transport owns a ZeroMQ context (one I/O thread, started
// and joined by libzmq) and, on the thread that calls its methods (the
// replication thread), the ROUTER, the DEALERs and, with CURVE, the ZAP
// REP socket. It starts no thread of its own.
//
// Thread safety: none; one thread owns it (ReplicationTransport's rule).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "broker/src/cluster/replication_messages.h"
#include "broker/src/cluster/replication_transport.h"
#include "broker/src/cluster/zap_allow_list.h"
#include "txmq/status.h"

namespace txmq::cluster {

struct ZmqPeer {
  std::string name;
  // Where its ROUTER listens: "tcp://127.0.0.1:7901".
  std::string endpoint;
  // Its Z85 CURVE public key; required when ZmqTransportOptions.secret_key
  // is set, ignored otherwise.
  std::string public_key;
};

struct ZmqTransportOptions {
  // This node's name: the routing id of its DEALERs, the peer name the
  // others see.
  std::string node;
  // Where this node's ROUTER binds; "tcp://127.0.0.1:*" picks a port
  // (endpoint() says which).
  std::string bind;
  // Every other replica of the group.
  std::vector<ZmqPeer> peers;
  // This node's Z85 CURVE secret key. Empty: plaintext links, peers known
  // by routing id only.
  std::string secret_key;
  // Frames queued per peer before Send drops; the leader has one request
  // per follower in flight, so a few suffice.
  int send_hwm = 16;
  // Frames queued on the ROUTER before libzmq stops reading the sockets.
  int receive_hwm = 256;
  // A frame above this closes the connection that sent it.
  size_t max_frame_bytes = kMaxReplicationFrameBytes;
  // ZMTP heartbeats: a ping this often; no traffic within the timeout
  // drops the connection.
  std::chrono::milliseconds heartbeat_ivl{500};
  std::chrono::milliseconds heartbeat_timeout{1500};
  std::chrono::milliseconds reconnect_ivl{50};
  std::chrono::milliseconds reconnect_ivl_max{1000};
};

class ZmqReplicationTransport final : public ReplicationTransport {
 public:
  // Binds and connects. kInvalidArgument naming the field for a bad option
  // (a peer without endpoint, a name twice, a malformed key, a key missing
  // with CURVE on); kUnavailable when the endpoint cannot be bound or CURVE
  // is not in this libzmq.
  static Result<std::unique_ptr<ZmqReplicationTransport>> Open(ZmqTransportOptions options);
  ~ZmqReplicationTransport() override;
  ZmqReplicationTransport(const ZmqReplicationTransport&) = delete;
  ZmqReplicationTransport& operator=(const ZmqReplicationTransport&) = delete;

  // kUnavailable, frame dropped: unknown peer, not connected, queue full.
  using ReplicationTransport::Send;
  Status Send(const std::string& peer, SharedFrame frame) override;
  // The next frame from an accepted peer; refused ones are dropped on the
  // way. Answers waiting ZAP requests first.
  std::optional<TransportFrame> Receive() override;
  // Waits up to `timeout` for a frame (answering ZAP requests meanwhile),
  // or for `wake_fd` (an eventfd; -1: none) to be readable; true when
  // either is. For the replication loop's idle moments.
  bool Wait(std::chrono::milliseconds timeout, int wake_fd = -1);

  // The bound endpoint, port resolved.
  const std::string& endpoint() const { return endpoint_; }
  // Frames refused: unknown sender, wrong shape.
  uint64_t refused() const { return refused_; }
  // Frames Send dropped.
  uint64_t dropped() const { return dropped_; }
  // CURVE connections the allow-list refused (0 in plaintext).
  uint64_t denied_connections() const;

 private:
  explicit ZmqReplicationTransport(ZmqTransportOptions options);
  Status Setup();
  void SetCommon(zmq::socket_t& s) const;
  // The peer `frames` (routing id, payload) is from, or "" when refused.
  std::string Sender(std::vector<zmq::message_t>& frames) const;

  const ZmqTransportOptions options_;
  std::map<std::string, std::string> name_by_key_;  // CURVE: Z85 key -> peer
  // Declared before the sockets, so destroyed after them (it waits for
  // them to close).
  zmq::context_t context_{1};
  std::unique_ptr<ZapAllowList> zap_;  // CURVE only; bound before router_
  zmq::socket_t router_;
  std::map<std::string, zmq::socket_t> dealers_;  // by peer name
  std::string endpoint_;
  uint64_t refused_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace txmq::cluster
