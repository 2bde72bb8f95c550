#include "broker/src/topics.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <tuple>

#include "protocol/src/edit_distance.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "storage/src/records.h"
#include "txmq/names.h"

namespace txmq::broker {

Status TopicManager::Recover() {
  storage::BrokerStore& store = core_.store();
  Status s = store.ForEachTopic([&](std::string_view name, const storage::store::TopicEntry& e) {
    TopicState topic;
    topic.name = std::string(name);
    topic.id = e.id;
    topic.created_ms = e.created_ms;
    topic.creator = e.creator;
    topic.queues.resize(e.queues);
    created_by_.Add(topic.creator);
    auto [it, inserted] = topics_.emplace(topic.name, std::move(topic));
    by_id_[e.id] = &it->second;
    next_id_ = std::max(next_id_, e.id + 1);
    return true;
  });
  if (!s.ok()) return s;
  if (auto used = store.GetMeta(kNextIdMeta)) {
    uint32_t next = 0;
    if (std::sscanf(used->c_str(), "%u", &next) != 1) {
      return Status::Corruption("damaged '" + std::string(kNextIdMeta) + "' record in the index");
    }
    next_id_ = std::max(next_id_, next);
  }
  // Each queue's stored range. Retention records where a queue it emptied
  // continues, so offsets are never reused.
  for (auto& [name, topic] : topics_) {
    for (uint32_t q = 0; q < topic.queues.size(); ++q) {
      const auto bounds = store.GetQueueBounds(topic.id, q);
      QueueState& state = topic.queues[q];
      state.min_offset = bounds.first;
      state.next_offset = state.visible_end = bounds.end;
    }
  }
  return Status::OK();
}

TopicState* TopicManager::Find(std::string_view name) {
  auto it = topics_.find(name);
  return it == topics_.end() ? nullptr : &it->second;
}

Status TopicManager::Missing(const std::string& name) const {
  std::vector<std::string> names;
  for (const auto& [existing, state] : topics_) names.push_back(existing);
  const std::string nearest = Nearest(name, names);
  return Status::NotFound("topic '" + name + "' does not exist" +
                          (nearest.empty() ? "" : " (did you mean '" + nearest + "'?)"));
}

TopicState* TopicManager::FindById(uint32_t id) {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

Status TopicManager::AdmitNew(std::string_view name, const RequestContext& ctx, bool take_token) {
  const std::string_view creator = ctx.creator();
  size_t reserved = 0, reserved_by_creator = 0;  // to be created, `name` aside
  for (const auto& [topic, r] : reserved_) {
    if (topic == name || Find(topic) != nullptr) continue;
    ++reserved;
    if (r.creator == creator) ++reserved_by_creator;
  }
  return core_.limits().AdmitTopic(name, topics_.size() + reserved,
                                   {creator, created_by_.Of(creator) + reserved_by_creator},
                                   take_token);
}

void TopicManager::Reserve(std::string_view name, std::string_view creator) {
  auto it = reserved_.find(name);
  if (it == reserved_.end()) it = reserved_.emplace(std::string(name), Reservation{}).first;
  if (it->second.holders++ == 0) it->second.creator = creator;
}

void TopicManager::Unreserve(std::string_view name) {
  auto it = reserved_.find(name);
  if (it != reserved_.end() && --it->second.holders == 0) reserved_.erase(it);
}

Result<TopicState*> TopicManager::GetOrCreate(std::string_view name, bool create, uint32_t queues,
                                              std::string_view creator) {
  if (TopicState* existing = Find(name)) return existing;
  if (!create) {
    return Status::NotFound("topic '" + std::string(name) +
                            "' does not exist and the broker does not create topics on first "
                            "send; create it with: txmqctl topic create " +
                            std::string(name));
  }
  std::optional<TopicPlacementSource::Served> placed;
  if (placement_ != nullptr) placed = placement_->ServedQueues(name);
  if (placed && queues != 0 && queues != placed->queue_count) {
    return Status::FailedPrecondition(
        "topic '" + std::string(name) + "' is placed on the cluster's groups with " +
        std::to_string(placed->queue_count) + " queues (etcd); it cannot be created here with " +
        std::to_string(queues));
  }
  if (queues == 0) queues = placed ? placed->queue_count : core_.options().default_queues;
  TopicState topic;
  if (placed) {
    topic.served = std::move(placed->queues);
    topic.placement_checked = true;
    topic.placement_version = placement_->version();
  }
  topic.name = std::string(name);
  topic.id = next_id_++;
  topic.created_ms = core_.NowMs();
  topic.creator = std::string(creator);
  topic.queues.resize(queues);
  core_.store().PutTopic(name, {topic.id, queues, topic.created_ms, topic.creator});
  created_by_.Add(topic.creator);
  Logger("broker")->info("created topic '{}' with {} queues{}", topic.name, queues,
                         creator.empty() ? "" : " for principal '" + topic.creator + "'");
  auto [it, inserted] = topics_.emplace(topic.name, std::move(topic));
  by_id_[it->second.id] = &it->second;
  return &it->second;
}

void TopicManager::Remove(std::string_view name) {
  auto it = topics_.find(name);
  if (it == topics_.end()) return;
  const uint32_t id = it->second.id;
  std::erase_if(touched_, [&](const auto& t) { return t.first == id; });
  advanced_.erase(it->second.name);
  by_id_.erase(id);
  core_.store().DeleteTopic(name);
  core_.store().PutMeta(kNextIdMeta, std::to_string(next_id_));
  created_by_.Remove(it->second.creator);
  Logger("broker")->info("deleted topic '{}' (id {})", it->second.name, id);
  topics_.erase(it);
}

uint64_t TopicManager::FirstStoredAtOrAfter(const TopicState& topic, uint32_t queue,
                                            int64_t time_ms) {
  // Broker time never goes back, so stored times do not decrease along a
  // queue: a binary search. Offsets that cannot be read (removed) are
  // passed over.
  storage::BrokerStore& store = core_.store();
  uint64_t lo = topic.queues[queue].min_offset;
  uint64_t hi = topic.queues[queue].visible_end;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    uint64_t at = mid;
    std::optional<int64_t> stored;
    for (; at < hi && !stored; ++at) {
      if (auto m = store.ReadMessage(topic.id, queue, at); m.ok())
        stored = m->body.message.stored_ms;
    }
    if (!stored || *stored >= time_ms) {
      hi = mid;
    } else {
      lo = at;  // `at` is one past the message read
    }
  }
  return lo;
}

void TopicManager::CheckPlacement(TopicState& topic) {
  if (placement_ == nullptr) return;
  const uint64_t version = placement_->version();
  if (topic.placement_checked && topic.placement_version == version) return;
  auto placed = placement_->ServedQueues(topic.name);
  if (!placed) return;  // not placed (yet): asked again next time
  topic.placement_checked = true;
  topic.placement_version = version;
  if (placed->queue_count == topic.queues.size()) topic.served = std::move(placed->queues);
}

uint32_t TopicManager::SelectQueue(TopicState& topic, std::string_view key) {
  const auto n = static_cast<uint32_t>(topic.queues.size());
  if (!key.empty()) return static_cast<uint32_t>(StableHash(key) % n);
  CheckPlacement(topic);
  if (!topic.served.empty()) {
    return topic.served[topic.round_robin++ % topic.served.size()];
  }
  return topic.round_robin++ % n;
}

uint64_t TopicManager::Append(TopicState& topic, uint32_t queue,
                              const storage::MessageView& message) {
  QueueState& q = topic.queues[queue];
  const uint64_t offset = q.next_offset++;
  q.bytes_in += message.body.size();
  // Found by id (dedup, msg show) unless it is a copy in one of the
  // broker's own topics: a dead letter keeps its original's id.
  core_.store().AppendMessage(topic.id, queue, offset, message, !IsSystemName(topic.name));
  if (!q.in_open_round) {
    q.in_open_round = true;
    touched_.emplace_back(topic.id, queue);
  }
  return offset;
}

void TopicManager::SealRound() {
  if (touched_.empty()) return;
  std::vector<std::tuple<uint32_t, uint32_t, uint64_t>> ends;
  ends.reserve(touched_.size());
  for (auto [id, queue] : touched_) {
    QueueState& q = by_id_.at(id)->queues[queue];
    q.in_open_round = false;
    ends.emplace_back(id, queue, q.next_offset);
  }
  touched_.clear();
  core_.OnDurableFirst([this, ends = std::move(ends)](const Status& s) {
    if (!s.ok()) return;  // never visible: the broker refuses writes from now on
    for (auto [id, queue, end] : ends) {
      TopicState* topic = FindById(id);
      if (topic == nullptr) continue;  // deleted meanwhile
      QueueState& q = topic->queues[queue];
      if (end > q.visible_end) {
        q.visible_end = end;
        advanced_.insert(topic->name);
      }
    }
  });
}

std::set<std::string> TopicManager::TakeAdvanced() { return std::exchange(advanced_, {}); }

uint64_t TopicManager::MessagesStored() const {
  uint64_t n = 0;
  for (const auto& [name, topic] : topics_) {
    for (const auto& q : topic.queues) n += q.visible_end - q.min_offset;
  }
  return n;
}

}  // namespace txmq::broker
