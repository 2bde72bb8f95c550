// Long polls: a pull that finds nothing waits (parked) until messages for
// it arrive, a redelivery of its group is due, or its wait is over.
//
// Each event costs what it concerns, not a pass over every parked pull:
// they are indexed by deadline (expiry, NextWake), by topic (new messages),
// by group (due redeliveries) and by client (a client leaving). Parked
// pulls are served in arrival order. How many may wait, per client and in
// all, is a limit (limits.h).
#include <algorithm>

#include "broker/src/delivery.h"

namespace txmq::broker {

void Delivery::Park(Parked parked) {
  const uint64_t id = next_parked_++;
  parked_by_deadline_.emplace(parked.deadline, id);
  for (const std::string& topic : parked.spec.topics) parked_by_topic_[topic].insert(id);
  parked_by_group_[parked.spec.group].insert(id);
  parked_by_client_[parked.routing_id].insert(id);
  core_.limits().Parked(parked.routing_id);
  parked_.emplace(id, std::move(parked));
}

namespace {

template <typename Index>
void EraseFrom(Index& index, const std::string& key, uint64_t id) {
  auto it = index.find(key);
  if (it == index.end()) return;
  it->second.erase(id);
  if (it->second.empty()) index.erase(it);
}

}  // namespace

Delivery::Parked Delivery::Unpark(uint64_t id) {
  auto it = parked_.find(id);
  Parked p = std::move(it->second);
  parked_.erase(it);
  parked_by_deadline_.erase({p.deadline, id});
  for (const std::string& topic : p.spec.topics) EraseFrom(parked_by_topic_, topic, id);
  EraseFrom(parked_by_group_, p.spec.group, id);
  EraseFrom(parked_by_client_, p.routing_id, id);
  core_.limits().Unparked(p.routing_id);
  return p;
}

bool Delivery::TryServeParked(uint64_t id, SteadyTime now) {
  auto it = parked_.find(id);
  if (it == parked_.end()) return false;  // served meanwhile
  std::vector<Item> items = Collect(it->second.spec, now);
  if (items.empty()) return false;
  Parked p = Unpark(id);
  ReplyItems(p.routing_id, p.request_id, items);
  return true;
}

void Delivery::TickParked(SteadyTime now) {
  // Groups with a redelivery due serve their parked pulls first...
  const int64_t now_ms = core_.NowMs();
  std::set<uint64_t> due;
  for (const auto& [group, ids] : parked_by_group_) {
    GroupState* g = groups_.Find(group);
    if (g != nullptr && !g->due.empty() && g->due.begin()->first <= now_ms) {
      due.insert(ids.begin(), ids.end());
    }
  }
  for (uint64_t id : due) TryServeParked(id, now);
  // ...then the waits that are over end, empty.
  while (!parked_by_deadline_.empty() && parked_by_deadline_.begin()->first <= now) {
    Parked p = Unpark(parked_by_deadline_.begin()->second);
    ReplyItems(p.routing_id, p.request_id, {});
  }
}

void Delivery::OnTopicsAdvanced(const std::set<std::string>& topics) {
  std::set<uint64_t> interested;  // in arrival order
  for (const std::string& topic : topics) {
    auto it = parked_by_topic_.find(topic);
    if (it != parked_by_topic_.end()) interested.insert(it->second.begin(), it->second.end());
  }
  if (interested.empty()) return;
  const SteadyTime now = core_.SteadyNow();
  for (uint64_t id : interested) TryServeParked(id, now);
}

void Delivery::ReleaseParked(const std::string& client_id, bool failed) {
  auto it = parked_by_client_.find(client_id);
  if (it == parked_by_client_.end()) return;
  const std::set<uint64_t> ids = it->second;
  for (uint64_t id : ids) {
    Parked p = Unpark(id);
    if (failed) {
      core_.limits().Abandon(p.routing_id, p.request_id);  // nobody to answer
    } else {
      ReplyItems(p.routing_id, p.request_id, {});
    }
  }
}

size_t Delivery::ParkedPulls(const std::string& group) const {
  auto it = parked_by_group_.find(group);
  return it == parked_by_group_.end() ? 0 : it->second.size();
}

void Delivery::AnswerParkedOf(const std::string& group) {
  auto it = parked_by_group_.find(group);
  if (it == parked_by_group_.end()) return;
  const std::set<uint64_t> ids = it->second;
  for (uint64_t id : ids) {
    Parked p = Unpark(id);
    ReplyItems(p.routing_id, p.request_id, {});
  }
}

void Delivery::AnswerParked(const Status& status) {
  while (!parked_.empty()) {
    Parked p = Unpark(parked_.begin()->first);
    core_.ReplyError({p.routing_id, p.request_id, nullptr}, status);
  }
}

SteadyTime Delivery::NextWake() const {
  if (groups_.has_handoffs()) return SteadyTime{};  // a queue changed hands: serve its owner now
  SteadyTime wake = SteadyTime::max();
  if (!groups_.lease_deadlines().empty()) wake = groups_.lease_deadlines().begin()->first;
  if (!parked_by_deadline_.empty()) wake = std::min(wake, parked_by_deadline_.begin()->first);
  return wake;
}

}  // namespace txmq::broker
