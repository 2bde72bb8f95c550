#include "consumer/src/held_messages.h"

#include <algorithm>

namespace txmq {

namespace {

// Topic names cannot hold a NUL, so this separates topic and key safely.
std::string LaneOf(const Received& m) {
  if (m.key.empty()) return {};
  std::string lane = m.topic;
  lane.push_back('\0');
  lane += m.key;
  return lane;
}

}  // namespace

HeldMessages::Id HeldMessages::Add(Received message, SteadyTime lease_until, uint32_t source) {
  const Id id = next_id_++;
  Entry& e = entries_[id];
  e.source = source;
  e.lane = LaneOf(message);
  e.message = std::move(message);
  e.lease_until = lease_until;
  if (e.lane.empty()) {
    MakeReady(id, e);
    return id;
  }
  std::deque<Id>& lane = lanes_[e.lane];
  lane.push_back(id);
  if (lane.size() == 1) {
    MakeReady(id, e);
  } else {
    e.state = State::kWaiting;
  }
  return id;
}

void HeldMessages::MakeReady(Id id, Entry& e) {
  e.state = State::kReady;
  ready_.push_back(id);
}

std::optional<HeldMessages::Id> HeldMessages::TakeReady() {
  while (!ready_.empty()) {
    const Id id = ready_.front();
    ready_.pop_front();
    auto it = entries_.find(id);
    if (it == entries_.end() || it->second.state != State::kReady) continue;  // finished meanwhile
    it->second.state = State::kRunning;
    return id;
  }
  return std::nullopt;
}

HeldMessages::Entry* HeldMessages::Find(Id id) {
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : &it->second;
}

void HeldMessages::Finish(Id id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  const std::string lane_name = std::move(it->second.lane);
  entries_.erase(it);
  if (lane_name.empty()) return;
  auto lane = lanes_.find(lane_name);
  if (lane == lanes_.end()) return;
  std::deque<Id>& ids = lane->second;
  const bool was_front = !ids.empty() && ids.front() == id;
  ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
  if (ids.empty()) {
    lanes_.erase(lane);
  } else if (was_front) {
    MakeReady(ids.front(), entries_.at(ids.front()));
  }
}

void HeldMessages::Backoff(Id id, SteadyTime at) {
  if (Entry* e = Find(id)) {
    e->state = State::kBackoff;
    e->retry_at = at;
  }
}

size_t HeldMessages::WakeDue(SteadyTime now) {
  size_t woken = 0;
  for (auto& [id, e] : entries_) {
    if (e.state == State::kBackoff && e.retry_at <= now) {
      MakeReady(id, e);
      ++woken;
    }
  }
  return woken;
}

std::vector<HeldMessages::Id> HeldMessages::TakeForRenewal(SteadyTime horizon) {
  std::vector<Id> ids;
  for (auto& [id, e] : entries_) {
    if (Renewable(e.state) && !e.renewing && e.lease_until < horizon) {
      e.renewing = true;
      ids.push_back(id);
    }
  }
  return ids;
}

SteadyTime HeldMessages::NextDue(std::chrono::milliseconds renew_margin) const {
  SteadyTime next = SteadyTime::max();
  for (const auto& [id, e] : entries_) {
    if (e.state == State::kBackoff) next = std::min(next, e.retry_at);
    if (Renewable(e.state) && !e.renewing) next = std::min(next, e.lease_until - renew_margin);
  }
  return next;
}

std::vector<HeldMessages::Idle> HeldMessages::TakeIdle() {
  std::vector<Idle> out;
  std::vector<Id> taken;
  // Entries are in arrival order, so each key's messages come out in order.
  for (auto& [id, e] : entries_) {
    if (e.state == State::kRunning || e.state == State::kReporting) continue;
    out.push_back({e.source, std::move(e.message)});
    taken.push_back(id);
  }
  for (Id id : taken) {
    Entry& e = entries_.at(id);
    if (!e.lane.empty()) {
      std::deque<Id>& ids = lanes_[e.lane];
      ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
      if (ids.empty()) lanes_.erase(e.lane);
    }
    entries_.erase(id);
  }
  ready_.clear();
  return out;
}

}  // namespace txmq
