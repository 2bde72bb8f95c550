// Connected clients: who said hello, with which role and group, and when
// each was last heard from. A client silent for longer than the client
// timeout is considered gone.
//
// Two names per client. The routing id is the connection: what replies,
// leases and parked pulls are addressed to. It is a secret the client made
// (protocol/src/connection.h says why) and is never shown or logged. The
// client id is the public name it registered under in hello: what status,
// group show, transaction records and audit lines show. A client id belongs
// to the connection (and principal) that registered it until that
// connection says goodbye or is forgotten; another connection presenting it
// is refused.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "protocol/src/util.h"
#include "protocol/txmq.capnp.h"
#include "txmq/status.h"

namespace txmq::broker {

struct ClientInfo {
  std::string id;          // client id from hello (public)
  std::string instance;    // hello's instance, or the id (queue_owners.h)
  std::string routing_id;  // its connection (secret: never shown)
  std::string key;         // CURVE public key (Z85) of the connection; "" without CURVE
  wire::Role role = wire::Role::ADMIN;
  std::string group;
  std::string software;
  bool checker = false;      // a producer that answers transaction checks
  int64_t connected_ms = 0;  // broker time
  SteadyTime last_seen;
};

class ClientRegistry {
 public:
  // Registers the connection `routing_id` (authenticated with `key`, "" in
  // plaintext mode) under the hello's client id; `now_ms` is broker time,
  // `now` the steady clock (both from the core: clock.h).
  // CONFLICT when another connection holds that client id; INVALID_ARGUMENT
  // when this connection registered under another id before.
  Result<const ClientInfo*> Hello(const std::string& routing_id, const std::string& key,
                                  wire::Hello::Reader hello, int64_t now_ms, SteadyTime now);
  // Null when the connection never said hello (or was forgotten).
  const ClientInfo* Find(const std::string& routing_id) const;
  void Touch(const std::string& routing_id, SteadyTime now);
  void Remove(const std::string& routing_id);

  // Forgets clients silent since before `cutoff`; returns them.
  std::vector<ClientInfo> ExpireSilent(SteadyTime cutoff);

  // The public name of a connection for logs and operators: its client id,
  // or "an unregistered client" (never the routing id).
  std::string NameOf(const std::string& routing_id) const;

  uint32_t Count(wire::Role role) const;
  // Live producers of one group that answer transaction checks and (when
  // set, see set_check_filter) may act for the group, most recently heard
  // first.
  std::vector<const ClientInfo*> Checkers(const std::string& group) const;
  // Who may receive a group's transaction checks (its halves, its
  // decisions); every registered checker of the group when unset.
  void set_check_filter(std::function<bool(const ClientInfo&, const std::string& group)> filter) {
    check_filter_ = std::move(filter);
  }
  // By routing id.
  const std::map<std::string, ClientInfo>& all() const { return clients_; }

 private:
  std::map<std::string, ClientInfo> clients_;     // by routing id
  std::map<std::string, std::string> by_client_;  // client id -> routing id
  std::function<bool(const ClientInfo&, const std::string&)> check_filter_;
};

// Fills the wire list of client summaries (group show, refusals that
// name live consumers).
void FillClients(const std::vector<const ClientInfo*>& clients, SteadyTime now,
                 capnp::List<wire::ClientSummary>::Builder out);

}  // namespace txmq::broker
