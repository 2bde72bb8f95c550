// Connected clients: who said hello, with which role and group, and when
// each was last heard from. A client silent for longer than the client
// timeout is considered gone.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "protocol/src/util.h"
#include "protocol/txmq.capnp.h"

namespace txmq::broker {

struct ClientInfo {
  std::string id;  // routing id
  wire::Role role = wire::Role::ADMIN;
  std::string group;
  std::string software;
  bool checker = false;      // a producer that answers transaction checks
  int64_t connected_ms = 0;  // broker time
  SteadyTime last_seen;
};

class ClientRegistry {
 public:
  // Registers (or re-registers) a client; `now_ms` is broker time, `now`
  // the steady clock (both from the core: clock.h).
  const ClientInfo& Hello(const std::string& routing_id, wire::Hello::Reader hello, int64_t now_ms,
                          SteadyTime now);
  // Null when the client never said hello (or was forgotten).
  const ClientInfo* Find(const std::string& routing_id) const;
  void Touch(const std::string& routing_id, SteadyTime now);
  void Remove(const std::string& routing_id);

  // Forgets clients silent since before `cutoff`; returns their ids.
  std::vector<ClientInfo> ExpireSilent(SteadyTime cutoff);

  uint32_t Count(wire::Role role) const;
  // Live producers of one group that answer transaction checks, most
  // recently heard first.
  std::vector<const ClientInfo*> Checkers(const std::string& group) const;
  const std::map<std::string, ClientInfo>& all() const { return clients_; }

 private:
  std::map<std::string, ClientInfo> clients_;
};

}  // namespace txmq::broker
