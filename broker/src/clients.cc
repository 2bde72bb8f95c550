#include "broker/src/clients.h"

#include <algorithm>

#include "protocol/src/message_codec.h"

namespace txmq::broker {

const ClientInfo& ClientRegistry::Hello(const std::string& routing_id, wire::Hello::Reader hello,
                                        int64_t now_ms, SteadyTime now) {
  ClientInfo& c = clients_[routing_id];
  c.id = routing_id;
  c.role = hello.getRole();
  c.group = wire::ToString(hello.getGroup());
  c.software = wire::ToString(hello.getSoftware());
  c.checker = hello.getChecker();
  c.connected_ms = now_ms;
  c.last_seen = now;
  return c;
}

const ClientInfo* ClientRegistry::Find(const std::string& routing_id) const {
  auto it = clients_.find(routing_id);
  return it == clients_.end() ? nullptr : &it->second;
}

void ClientRegistry::Touch(const std::string& routing_id, SteadyTime now) {
  auto it = clients_.find(routing_id);
  if (it != clients_.end()) it->second.last_seen = now;
}

void ClientRegistry::Remove(const std::string& routing_id) { clients_.erase(routing_id); }

std::vector<ClientInfo> ClientRegistry::ExpireSilent(SteadyTime cutoff) {
  std::vector<ClientInfo> gone;
  for (auto it = clients_.begin(); it != clients_.end();) {
    if (it->second.last_seen < cutoff) {
      gone.push_back(std::move(it->second));
      it = clients_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

uint32_t ClientRegistry::Count(wire::Role role) const {
  return static_cast<uint32_t>(std::count_if(
      clients_.begin(), clients_.end(), [&](const auto& kv) { return kv.second.role == role; }));
}

std::vector<const ClientInfo*> ClientRegistry::Checkers(const std::string& group) const {
  std::vector<const ClientInfo*> out;
  for (const auto& [id, c] : clients_) {
    if (c.role == wire::Role::PRODUCER && c.checker && c.group == group) out.push_back(&c);
  }
  std::sort(out.begin(), out.end(),
            [](const ClientInfo* a, const ClientInfo* b) { return a->last_seen > b->last_seen; });
  return out;
}

}  // namespace txmq::broker
