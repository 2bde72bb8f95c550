#include "broker/src/groups.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>

#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::broker {

storage::Location RetryEntry::Source() const {
  if (record.source) return *record.source;
  return {record.topic, record.queue, record.offset};
}

GroupTable::GroupTable(Core& core, TopicManager& topics) : core_(core), topics_(topics) {}

Status GroupTable::Recover() {
  // Lease ids from an earlier run must never match a new lease, so start
  // from broker time (which never goes backward, also across restarts)
  // rather than from 1.
  next_lease_id_ = static_cast<uint64_t>(core_.NowMs()) << 20;
  size_t cursors = 0, retries = 0;
  Status s = core_.store().ForEachGroup(
      [&](std::string_view name, const storage::store::GroupEntry& entry) {
        GroupState& g = Get(std::string(name));
        g.creator = entry.creator;
        g.created_ms = entry.created_ms;
        created_by_.Add(g.creator);
        return true;
      });
  if (!s.ok()) return s;
  s = core_.store().ForEachCursor(
      [&](std::string_view group, std::string_view topic, uint32_t queue, uint64_t floor) {
        const TopicState* t = topics_.Find(topic);
        if (t == nullptr || queue >= t->queues.size()) return true;  // topic gone: stale cursor
        GroupState& g = Get(std::string(group));
        auto [it, fresh] = g.subscriptions.try_emplace(std::string(topic));
        Subscription& sub = it->second;
        if (fresh) {
          InitCursors(g, it->first, *t, false, sub);
          readers_[it->first].insert(&g);
        }
        sub.queues[queue].next = std::max(floor, t->queues[queue].min_offset);
        sub.queues[queue].persisted_floor = floor;
        ++cursors;
        return true;
      });
  if (!s.ok()) return s;
  s = core_.store().ForEachRetry(
      [&](std::string_view group, int64_t due, uint64_t id, const storage::RetryRecord& record) {
        RetryEntry entry;
        entry.id = id;
        entry.due_ms = due;
        entry.record = record;
        GroupState& g = Get(std::string(group));
        g.due.emplace(entry.due_ms, id);
        g.retries.emplace(id, std::move(entry));
        next_retry_id_ = std::max(next_retry_id_, id + 1);
        ++retries;
        return true;
      });
  if (!s.ok()) return s;
  Logger("broker")->info("consumer groups: {} groups, {} queue cursors, {} scheduled redeliveries",
                         groups_.size(), cursors, retries);
  return Status::OK();
}

void GroupTable::InitCursors(const GroupState& group, const std::string& topic_name,
                             const TopicState& topic, bool from_latest, Subscription& sub) {
  sub.queues.resize(topic.queues.size());
  for (uint32_t q = 0; q < sub.queues.size(); ++q) {
    QueueCursor& c = sub.queues[q];
    c.group = &group.name;
    c.topic = &topic_name;
    c.queue = q;
    c.next = from_latest ? topic.queues[q].visible_end : topic.queues[q].min_offset;
  }
}

GroupState& GroupTable::Get(const std::string& group) {
  auto it = groups_.find(group);
  if (it != groups_.end()) return it->second;
  GroupState& g = groups_[group];
  g.name = group;
  return g;
}

GroupState* GroupTable::Find(std::string_view group) {
  auto it = groups_.find(group);
  return it == groups_.end() ? nullptr : &it->second;
}

Status GroupTable::AdmitNew(std::string_view name, const RequestContext& ctx) {
  const std::string_view creator = ctx.creator();
  return core_.limits().AdmitGroup(name, groups_.size(), {creator, created_by_.Of(creator)});
}

GroupState& GroupTable::Create(const std::string& name, std::string_view creator) {
  GroupState& g = Get(name);
  g.creator = std::string(creator);
  g.created_ms = core_.NowMs();
  created_by_.Add(creator);
  core_.store().PutGroup(name, {g.created_ms, g.creator});
  Logger("broker")->info("consumer group '{}' began{}", name,
                         creator.empty() ? "" : " for principal '" + g.creator + "'");
  return g;
}

Subscription* GroupTable::Subscribe(GroupState& group, const TopicState& topic, bool from_latest) {
  auto it = group.subscriptions.find(topic.name);
  if (it != group.subscriptions.end()) return &it->second;
  auto [entry, fresh] = group.subscriptions.try_emplace(topic.name);
  Subscription& sub = entry->second;
  InitCursors(group, entry->first, topic, from_latest, sub);
  readers_[entry->first].insert(&group);
  for (QueueCursor& c : sub.queues) MarkDirty(c);  // the starting point must survive a restart
  Logger("broker")->info("group '{}' subscribed to '{}' from its {}", group.name, topic.name,
                         from_latest ? "end" : "start");
  return &sub;
}

void GroupTable::NoteExpired(const TopicState& topic, uint32_t queue, uint64_t old_start,
                             uint64_t new_start) {
  auto readers = readers_.find(topic.name);
  if (readers == readers_.end()) return;
  for (GroupState* g : readers->second) {
    auto sub = g->subscriptions.find(topic.name);
    if (sub == g->subscriptions.end() || queue >= sub->second.queues.size()) continue;
    QueueCursor& c = sub->second.queues[queue];
    // Offsets from `next` on were never handed out; those below it were
    // received (finished, or leased: a lease that ends finds its message
    // gone and says so itself, see Delivery).
    const uint64_t from = std::max(c.next, old_start);
    if (new_start <= from) continue;
    const uint64_t lost = new_start - from;
    c.expired += lost;
    g->expired += lost;
    core_.counters().expired_unconsumed += lost;
    // The latest stretch grows while retention walks one queue forward.
    const std::string where = topic.name + "/" + std::to_string(queue) + " offsets ";
    const size_t dots = g->expired_latest.rfind("..");
    if (g->expired_unlogged > 0 && g->expired_latest.starts_with(where) &&
        dots != std::string::npos &&
        g->expired_latest.substr(dots + 2) == std::to_string(from - 1)) {
      g->expired_latest.replace(dots + 2, std::string::npos, std::to_string(new_start - 1));
    } else {
      g->expired_latest = where + std::to_string(from) + ".." + std::to_string(new_start - 1);
    }
    g->expired_unlogged += lost;
    expiry_unlogged_.insert(g);
  }
}

void GroupTable::LogExpired() {
  constexpr auto kLogEvery = std::chrono::seconds(10);
  const SteadyTime now = core_.SteadyNow();
  for (auto it = expiry_unlogged_.begin(); it != expiry_unlogged_.end();) {
    GroupState* g = *it;
    if (g->expiry_logged != SteadyTime{} && now - g->expiry_logged < kLogEvery) {
      ++it;
      continue;
    }
    Logger("broker")->warn(
        "retention deleted {} message{} that group '{}' had not received (latest: {}; older "
        "than --retention {}); the group lost {} this way since start",
        g->expired_unlogged, g->expired_unlogged == 1 ? "" : "s", g->name, g->expired_latest,
        FormatDurationMs(core_.options().retention.count()), g->expired);
    g->expired_unlogged = 0;
    g->expiry_logged = now;
    it = expiry_unlogged_.erase(it);
  }
}

void GroupTable::MarkDirty(QueueCursor& cursor) {
  if (cursor.dirty || cursor.floor() == cursor.persisted_floor) return;
  cursor.dirty = true;
  dirty_.push_back(&cursor);
}

void GroupTable::FlushDirty() {
  for (QueueCursor* c : dirty_) {
    c->dirty = false;
    const uint64_t floor = c->floor();
    if (floor == c->persisted_floor) continue;
    core_.store().PutCursor(*c->group, *c->topic, c->queue, floor);
    c->persisted_floor = floor;
  }
  dirty_.clear();
}

uint32_t GroupTable::DropSubscription(GroupState& group, const std::string& topic) {
  auto it = group.subscriptions.find(topic);
  if (it == group.subscriptions.end()) return 0;
  uint32_t leases = 0;
  for (QueueCursor& c : it->second.queues) {
    for (const auto& [offset, lease] : c.leased) RemoveLease(lease.lease_id);
    leases += static_cast<uint32_t>(c.leased.size());
    std::erase(dirty_, &c);  // never written again
    core_.store().DeleteCursor(group.name, topic, c.queue);
  }
  group.subscriptions.erase(it);
  if (auto r = readers_.find(topic); r != readers_.end()) {
    r->second.erase(&group);
    if (r->second.empty()) readers_.erase(r);
  }
  return leases;
}

bool GroupTable::DropRetry(GroupState& group, uint64_t retry_id) {
  auto it = group.retries.find(retry_id);
  if (it == group.retries.end()) return false;
  RetryEntry& e = it->second;
  const bool leased = e.lease.has_value();
  if (leased) RemoveLease(e.lease->lease_id);
  group.due.erase({e.due_ms, e.id});
  core_.store().DeleteRetry(group.name, e.due_ms, e.id);
  group.retries.erase(it);
  return leased;
}

void GroupTable::Erase(const std::string& name) {
  auto it = groups_.find(name);
  if (it == groups_.end()) return;
  GroupState& g = it->second;
  std::vector<std::string> topics;
  for (const auto& [topic, sub] : g.subscriptions) topics.push_back(topic);
  for (const auto& topic : topics) DropSubscription(g, topic);
  std::vector<uint64_t> retries;
  for (const auto& [id, e] : g.retries) retries.push_back(id);
  for (uint64_t id : retries) DropRetry(g, id);
  created_by_.Remove(g.creator);
  expiry_unlogged_.erase(&g);
  core_.store().DeleteGroup(name);
  groups_.erase(it);
}

void GroupTable::AddLease(const LeaseRef& ref, uint64_t lease_id) {
  lease_deadlines_.emplace(ref.deadline, lease_id);
  leases_.emplace(lease_id, ref);
  if (QueueCursor* c = CursorOf(ref)) ++c->holders[ref.client];
}

QueueCursor* GroupTable::CursorOf(const LeaseRef& ref) {
  if (ref.cursor != nullptr) return ref.cursor;
  return CursorOf(*ref.group, ref.topic, ref.queue);
}

QueueCursor* GroupTable::CursorOf(GroupState& group, std::string_view topic, uint32_t queue) {
  auto sub = group.subscriptions.find(topic);
  if (sub == group.subscriptions.end() || queue >= sub->second.queues.size()) return nullptr;
  return &sub->second.queues[queue];
}

Lease& GroupTable::LeaseOf(const LeaseRef& ref) {
  if (ref.cursor != nullptr) return ref.cursor->leased.at(ref.offset);
  return *ref.group->retries.at(ref.retry_id).lease;
}

void GroupTable::ExtendLease(uint64_t lease_id, SteadyTime deadline) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return;
  LeaseRef& ref = it->second;
  lease_deadlines_.erase({ref.deadline, lease_id});
  lease_deadlines_.emplace(deadline, lease_id);
  ref.deadline = deadline;
  LeaseOf(ref).deadline = deadline;
}

void GroupTable::RemoveLease(uint64_t lease_id) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return;
  const LeaseRef& ref = it->second;
  if (QueueCursor* c = CursorOf(ref)) {
    auto h = c->holders.find(ref.client);
    if (h != c->holders.end() && --h->second == 0) {
      c->holders.erase(h);
      if (ref.client != c->owner) NoteHandoff(ref.group->name);
    }
  }
  lease_deadlines_.erase({ref.deadline, lease_id});
  leases_.erase(it);
}

}  // namespace txmq::broker
