#include "broker/src/clients.h"

#include <algorithm>

#include "protocol/src/message_codec.h"

namespace txmq::broker {

Result<const ClientInfo*> ClientRegistry::Hello(const std::string& routing_id,
                                                const std::string& key, wire::Hello::Reader hello,
                                                int64_t now_ms, SteadyTime now) {
  const std::string client_id = wire::ToString(hello.getClientId());
  if (client_id.empty() || client_id.size() > 255) {
    return Status::InvalidArgument("client id must be 1-255 bytes (got " +
                                   std::to_string(client_id.size()) + ")");
  }
  std::string instance = wire::ToString(hello.getInstance());
  if (instance.size() > 255) {
    return Status::InvalidArgument("client instance must be at most 255 bytes (got " +
                                   std::to_string(instance.size()) + ")");
  }
  // Ids go into log and audit lines: a control character there could
  // start a line of the client's own.
  for (const std::string* name : {&client_id, static_cast<const std::string*>(&instance)}) {
    if (std::any_of(name->begin(), name->end(),
                    [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
      return Status::InvalidArgument(
          std::string(name == &client_id ? "client id" : "client instance") +
          " must not contain control characters");
    }
  }
  if (instance.empty()) instance = client_id;
  auto mine = clients_.find(routing_id);
  if (mine != clients_.end() && mine->second.id != client_id) {
    return Status::InvalidArgument("this connection registered as client '" + mine->second.id +
                                   "'; it cannot say hello as '" + client_id + "'");
  }
  auto holder = by_client_.find(client_id);
  if (holder != by_client_.end() && holder->second != routing_id) {
    return Status::Conflict("client id '" + client_id +
                            "' belongs to another connection; it is free again once that one "
                            "says goodbye or stays silent for the broker's client timeout");
  }
  if (mine != clients_.end() && mine->second.key != key) {
    // Only the holder of the secret routing id can get here, and then with
    // another key: refuse rather than let one principal inherit another's
    // registration.
    return Status::PermissionDenied("client '" + client_id +
                                    "' was registered by another principal");
  }
  ClientInfo& c = clients_[routing_id];
  c.id = client_id;
  c.instance = std::move(instance);
  c.routing_id = routing_id;
  c.key = key;
  c.role = hello.getRole();
  c.group = wire::ToString(hello.getGroup());
  c.software = wire::ToString(hello.getSoftware());
  c.checker = hello.getChecker();
  c.connected_ms = now_ms;
  c.last_seen = now;
  by_client_[client_id] = routing_id;
  return &c;
}

const ClientInfo* ClientRegistry::Find(const std::string& routing_id) const {
  auto it = clients_.find(routing_id);
  return it == clients_.end() ? nullptr : &it->second;
}

void ClientRegistry::Touch(const std::string& routing_id, SteadyTime now) {
  auto it = clients_.find(routing_id);
  if (it != clients_.end()) it->second.last_seen = now;
}

void ClientRegistry::Remove(const std::string& routing_id) {
  auto it = clients_.find(routing_id);
  if (it == clients_.end()) return;
  by_client_.erase(it->second.id);
  clients_.erase(it);
}

std::vector<ClientInfo> ClientRegistry::ExpireSilent(SteadyTime cutoff) {
  std::vector<ClientInfo> gone;
  for (auto it = clients_.begin(); it != clients_.end();) {
    if (it->second.last_seen < cutoff) {
      by_client_.erase(it->second.id);
      gone.push_back(std::move(it->second));
      it = clients_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

std::string ClientRegistry::NameOf(const std::string& routing_id) const {
  const ClientInfo* c = Find(routing_id);
  return c != nullptr ? c->id : "an unregistered client";
}

uint32_t ClientRegistry::Count(wire::Role role) const {
  return static_cast<uint32_t>(std::count_if(
      clients_.begin(), clients_.end(), [&](const auto& kv) { return kv.second.role == role; }));
}

std::vector<const ClientInfo*> ClientRegistry::Checkers(const std::string& group) const {
  std::vector<const ClientInfo*> out;
  for (const auto& [routing_id, c] : clients_) {
    if (c.role != wire::Role::PRODUCER || !c.checker || c.group != group) continue;
    if (check_filter_ && !check_filter_(c, group)) continue;
    out.push_back(&c);
  }
  std::sort(out.begin(), out.end(),
            [](const ClientInfo* a, const ClientInfo* b) { return a->last_seen > b->last_seen; });
  return out;
}

void FillClients(const std::vector<const ClientInfo*>& clients, SteadyTime now,
                 capnp::List<wire::ClientSummary>::Builder out) {
  for (unsigned i = 0; i < clients.size(); ++i) {
    const ClientInfo& c = *clients[i];
    out[i].setClientId(c.id);
    out[i].setInstance(c.instance);
    out[i].setRole(c.role);
    out[i].setGroup(c.group);
    out[i].setSoftware(c.software);
    out[i].setConnectedMs(c.connected_ms);
    out[i].setLastSeenAgoMs(
        std::chrono::duration_cast<std::chrono::milliseconds>(now - c.last_seen).count());
  }
}

}  // namespace txmq::broker
