#include "broker/src/groups.h"

#include <cstring>
#include <memory>

#include "protocol/src/log.h"
#include "storage/src/coding.h"
#include "storage/src/keys.h"

namespace txmq::broker {

namespace keys = storage::keys;

std::string RetryEntry::MessageKey() const {
  if (record.source)
    return keys::Message(record.source->topic, record.source->queue, record.source->offset);
  return keys::Message(record.topic, record.queue, record.offset);
}

GroupTable::GroupTable(Core& core, TopicManager& topics) : core_(core), topics_(topics) {}

Status GroupTable::Recover() {
  // Lease ids from an earlier run must never match a new lease, so start
  // from broker time (which never goes backward, also across restarts)
  // rather than from 1.
  next_lease_id_ = static_cast<uint64_t>(core_.NowMs()) << 20;
  std::unique_ptr<leveldb::Iterator> it(core_.db()->NewIterator(leveldb::ReadOptions()));
  size_t cursors = 0, retries = 0;

  const std::string cursor_prefix(1, keys::kCursor);
  for (it->Seek(cursor_prefix); it->Valid() && it->key().starts_with(cursor_prefix); it->Next()) {
    std::string key = it->key().ToString();
    std::string_view group, topic;
    uint32_t queue;
    uint64_t floor;
    std::string_view value(it->value().data(), it->value().size());
    if (!keys::ParseCursor(key, &group, &topic, &queue) || !storage::GetFixed64(&value, &floor)) {
      return Status::Corruption("bad consumer cursor record");
    }
    const TopicState* t = topics_.Find(topic);
    if (t == nullptr || queue >= t->queues.size()) continue;  // topic gone: stale cursor
    GroupState& g = Get(std::string(group));
    Subscription& sub = g.subscriptions[std::string(topic)];
    if (sub.queues.empty()) {
      sub.queues.resize(t->queues.size());
      for (uint32_t q = 0; q < sub.queues.size(); ++q) {
        sub.queues[q].key = keys::Cursor(group, topic, q);
        sub.queues[q].next = t->queues[q].min_offset;
      }
    }
    sub.queues[queue].next = std::max(floor, t->queues[queue].min_offset);
    sub.queues[queue].persisted_floor = floor;
    ++cursors;
  }

  const std::string retry_prefix(1, keys::kRetry);
  for (it->Seek(retry_prefix); it->Valid() && it->key().starts_with(retry_prefix); it->Next()) {
    std::string key = it->key().ToString();
    std::string_view group;
    uint64_t due, id;
    RetryEntry entry;
    if (!keys::ParseRetry(key, &group, &due, &id) ||
        !storage::DecodeRetry(std::string_view(it->value().data(), it->value().size()),
                              &entry.record)) {
      return Status::Corruption("bad retry record");
    }
    entry.id = id;
    entry.due_ms = static_cast<int64_t>(due);
    GroupState& g = Get(std::string(group));
    g.due.emplace(entry.due_ms, id);
    g.retries.emplace(id, std::move(entry));
    next_retry_id_ = std::max(next_retry_id_, id + 1);
    ++retries;
  }
  Logger("broker")->info("consumer groups: {} groups, {} queue cursors, {} scheduled redeliveries",
                         groups_.size(), cursors, retries);
  return Status::OK();
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

Subscription* GroupTable::Subscribe(GroupState& group, const TopicState& topic, bool from_latest) {
  auto it = group.subscriptions.find(topic.name);
  if (it != group.subscriptions.end()) return &it->second;
  Subscription& sub = group.subscriptions[topic.name];
  sub.queues.resize(topic.queues.size());
  for (uint32_t q = 0; q < sub.queues.size(); ++q) {
    QueueCursor& c = sub.queues[q];
    c.key = keys::Cursor(group.name, topic.name, q);
    c.next = from_latest ? topic.queues[q].visible_end : topic.queues[q].min_offset;
    MarkDirty(c);  // the starting point must survive a restart
  }
  Logger("broker")->info("group '{}' subscribed to '{}' from its {}", group.name, topic.name,
                         from_latest ? "end" : "start");
  return &sub;
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
    std::string value;
    storage::PutFixed64(&value, floor);
    core_.batch().Put(c->key, value);
    c->persisted_floor = floor;
  }
  dirty_.clear();
}

void GroupTable::AddLease(const LeaseRef& ref, uint64_t lease_id) {
  lease_deadlines_.emplace(ref.deadline, lease_id);
  leases_.emplace(lease_id, ref);
}

void GroupTable::RemoveLease(uint64_t lease_id) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return;
  lease_deadlines_.erase({it->second.deadline, lease_id});
  leases_.erase(it);
}

}  // namespace txmq::broker
