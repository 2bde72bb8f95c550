// What the broker's services share on the core thread: options, time (both
// broker time and the steady clock, from the TimeSource the core is built
// with: clock.h), the store (reads, and writes into its open round), the
// path to clients and the counters. Every member is used by the core thread
// only.
//
// The services reach the network only through ClientLink and time only
// through the core, so the whole of delivery and of the transaction state
// machine runs in a unit test with a fake clock and a recording link
// (tests/unit/broker_harness.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "broker/src/clock.h"
#include "broker/src/limits.h"
#include "protocol/src/codec.h"
#include "storage/src/broker_store.h"
#include "txmq/broker.h"
#include "txmq/status.h"

namespace txmq::broker {

struct ClientInfo;
namespace auth {
struct Principal;
}
class DiskWatermark;

// Who sent a request. Handlers authorise against this, never against a
// field in the request (auth/guard.h does, before any handler runs).
struct RequestContext {
  std::string routing_id;  // the connection (a secret: reply to it, never show it)
  uint64_t request_id = 0;
  const ClientInfo* client = nullptr;  // null until the client said hello
  // With CURVE: the connection's key (the ZAP user id), its principal
  // (valid while the request is served), and whether only the admin right
  // allowed the request (then it is audit-logged).
  std::string key{};
  const auth::Principal* principal = nullptr;
  bool as_admin = false;
  // Set for a request from the HTTP console (operator_mailbox.h): the
  // address of the browser that asked, "" for a request from the network.
  std::string console_peer{};

  bool console() const { return !console_peer.empty(); }
  // The client id it registered under, or "" before hello ("http@PEER"
  // for the console): what logs, records and operators see.
  std::string client_id() const;
  // Who the audit trail names: the principal, or "(unauthenticated)" when
  // the broker runs without CURVE.
  std::string principal_name() const;
  // Whose share a topic or group this request creates counts against (the
  // per-principal creation limits): its principal, unless that is an admin
  // ("" then, as without CURVE: only the broker-wide limits apply).
  std::string_view creator() const;
};

struct Counters {
  uint64_t bad_frames = 0;       // undecodable or unknown requests
  uint64_t dropped_replies = 0;  // peer gone or its queue full
  uint64_t messages_stored = 0;  // since start
  uint64_t duplicates = 0;       // sends answered from the dedup window
  uint64_t delivered = 0;
  uint64_t acked = 0;
  uint64_t redelivery_scheduled = 0;
  uint64_t dead_lettered = 0;
  // Messages retention deleted before a group reading their topic received
  // them, once per such group.
  uint64_t expired_unconsumed = 0;
};

// Where frames for clients go: the ROUTER socket in the server
// (router_link.h), a recorder in unit tests.
// Thread safety: the core thread only.
class ClientLink {
 public:
  virtual ~ClientLink() = default;
  // Sends without blocking; false when the client is not connected (or its
  // queue is full) and the frame was dropped. `ticket` reserves the frame's
  // bytes in the reply budget (limits.h): keep it with the bytes until they
  // left the process (or were dropped), then destroy it.
  virtual bool Send(const std::string& routing_id, wire::OutFrame& frame, ReplyTicket ticket) = 0;
};

class Core {
 public:
  // `link` and `time` must outlive the core.
  Core(const BrokerOptions& options, ClientLink& link, const TimeSource& time)
      : options_(options), clock_(time), link_(link), limits_(options, clock_) {}

  const BrokerOptions& options() const { return options_; }
  // Broker time (see clock.h): what every schedule and stored timestamp uses.
  int64_t NowMs() const { return clock_.NowMs(); }
  // The steady clock (see clock.h): what every in-process timeout uses.
  SteadyTime SteadyNow() const { return clock_.SteadyNow(); }
  BrokerClock& clock() { return clock_; }
  Counters& counters() { return counters_; }
  Limits& limits() { return limits_; }
  const Limits& limits() const { return limits_; }

  // The store; set once it is open (Server::Init), before any request.
  storage::BrokerStore& store() { return *store_; }
  void set_store(storage::BrokerStore* store) { store_ = store; }

  // Records broker time in the open round, so a restart continues from it
  // (clock.h). Called as the round is sealed.
  void StampBrokerTime();
  static constexpr std::string_view kBrokerTimeMeta = "broker-time";

  // Runs `fn` on the core thread once everything written so far is durable.
  void OnDurable(std::function<void(const Status&)> fn) { store_->OnDurable(std::move(fn)); }
  // Like OnDurable, but runs before every completion added so far.
  void OnDurableFirst(std::function<void(const Status&)> fn) {
    store_->OnDurableFirst(std::move(fn));
  }

  // After a failed write nothing more is accepted: in-memory state may be
  // ahead of the disk, and only a restart rebuilds it from what is there.
  bool storage_failed() const { return !storage_error_.ok(); }
  const Status& storage_error() const { return storage_error_; }
  void SetStorageFailed(const Status& s) {
    if (storage_error_.ok()) storage_error_ = s;
  }
  // UNAVAILABLE for writes once storage failed, else OK.
  Status CheckWritable() const;
  // For requests that add data (sends, halves, dead-letter resends, topic
  // creation): CheckWritable, then RESOURCE_EXHAUSTED while disk space is
  // low (disk_watermark.h). Requests that let data go (acks, nacks,
  // transaction ends) check CheckWritable only, so consumers can drain.
  Status CheckAcceptsNewData() const;
  // Set once by the server before any request; must outlive the core.
  void set_disk(const DiskWatermark* disk) { disk_ = disk; }

  // Sends a frame to a client without blocking; false when the client is
  // not connected (or its queue is full) and the frame was dropped. A
  // reply that does not fit in the client's reply budget is dropped too,
  // and a short OVERLOADED error naming the limit goes in its place.
  bool Deliver(const std::string& routing_id, wire::OutFrame& frame);
  // Sends a reply (never blocks; a peer that is gone or stuck loses it).
  void Reply(const std::string& routing_id, wire::OutFrame& reply) { Deliver(routing_id, reply); }
  void Reply(const RequestContext& ctx, wire::OutFrame& reply) { Reply(ctx.routing_id, reply); }
  void ReplyError(const RequestContext& ctx, const Status& status);
  static wire::OutFrame NewReply(const RequestContext& ctx) {
    return wire::OutFrame(ctx.request_id);
  }

 private:
  const BrokerOptions& options_;
  BrokerClock clock_;
  ClientLink& link_;
  storage::BrokerStore* store_ = nullptr;
  const DiskWatermark* disk_ = nullptr;
  Status storage_error_;
  Counters counters_;
  Limits limits_;
};

}  // namespace txmq::broker
