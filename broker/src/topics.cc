#include "broker/src/topics.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <tuple>

#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "storage/src/keys.h"
#include "storage/src/records.h"
#include "txmq/names.h"

namespace txmq::broker {

namespace keys = storage::keys;

Status TopicManager::Recover() {
  std::unique_ptr<leveldb::Iterator> it(core_.db()->NewIterator(leveldb::ReadOptions()));
  const std::string prefix(1, keys::kTopic);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const std::string key = it->key().ToString();
    std::string_view name;
    storage::TopicRecord record;
    if (!keys::ParseTopic(key, &name) ||
        !storage::DecodeTopic(std::string_view(it->value().data(), it->value().size()), &record) ||
        record.queues == 0) {
      return Status::Corruption("bad topic record under key '" + it->key().ToString() + "'");
    }
    TopicState topic;
    topic.name = std::string(name);
    topic.created_ms = record.created_ms;
    topic.queues.resize(record.queues);
    topics_.emplace(topic.name, std::move(topic));
  }
  if (!it->status().ok()) return Status::Corruption("scanning topics: " + it->status().ToString());

  // Each queue's stored range: its first and last key.
  for (auto& [name, topic] : topics_) {
    for (uint32_t q = 0; q < topic.queues.size(); ++q) {
      const std::string prefix_q = keys::QueuePrefix(name, q);
      const std::string end = keys::PrefixEnd(prefix_q);
      QueueState& state = topic.queues[q];
      std::string_view t;
      uint32_t qq;
      uint64_t offset;
      // Retention records where a queue it emptied continues, so offsets
      // are never reused.
      std::string start;
      uint64_t kept_from = 0;
      if (core_.db()->Get(leveldb::ReadOptions(), keys::QueueStart(name, q), &start).ok() &&
          start.size() == 8) {
        std::memcpy(&kept_from, start.data(), 8);
      }
      state.min_offset = state.next_offset = state.visible_end = kept_from;
      it->Seek(prefix_q);
      if (!it->Valid() || !it->key().starts_with(prefix_q)) continue;  // empty queue
      const std::string first = it->key().ToString();
      if (keys::ParseMessage(first, &t, &qq, &offset))
        state.min_offset = std::max(kept_from, offset);
      it->Seek(end);
      if (it->Valid()) {
        it->Prev();
      } else {
        it->SeekToLast();
      }
      std::string last = it->Valid() ? it->key().ToString() : std::string();
      if (!keys::ParseMessage(last, &t, &qq, &offset)) {
        return Status::Corruption("cannot find the last message of " + name + "/" +
                                  std::to_string(q));
      }
      state.next_offset = std::max(kept_from, offset + 1);
      state.visible_end = state.next_offset;
    }
  }
  return Status::OK();
}

TopicState* TopicManager::Find(std::string_view name) {
  auto it = topics_.find(name);
  return it == topics_.end() ? nullptr : &it->second;
}

Result<TopicState*> TopicManager::GetOrCreate(std::string_view name, bool create, uint32_t queues) {
  if (TopicState* existing = Find(name)) return existing;
  if (!create) {
    return Status::NotFound("topic '" + std::string(name) +
                            "' does not exist and the broker does not create topics on first "
                            "send; create it with: txmqctl topic create " +
                            std::string(name));
  }
  if (queues == 0) queues = core_.options().default_queues;
  TopicState topic;
  topic.name = std::string(name);
  topic.created_ms = core_.NowMs();
  topic.queues.resize(queues);
  storage::TopicRecord record{queues, topic.created_ms};
  core_.batch().Put(keys::Topic(name), storage::EncodeTopic(record));
  Logger("broker")->info("created topic '{}' with {} queues", topic.name, queues);
  auto [it, inserted] = topics_.emplace(topic.name, std::move(topic));
  return &it->second;
}

uint32_t TopicManager::SelectQueue(TopicState& topic, std::string_view key) {
  const auto n = static_cast<uint32_t>(topic.queues.size());
  if (!key.empty()) return static_cast<uint32_t>(StableHash(key) % n);
  return topic.round_robin++ % n;
}

uint64_t TopicManager::Append(TopicState& topic, uint32_t queue,
                              const storage::MessageView& message) {
  QueueState& q = topic.queues[queue];
  const uint64_t offset = q.next_offset++;
  std::string value;
  storage::EncodeMessage(message, &value);
  core_.batch().Put(keys::Message(topic.name, queue, offset), value);
  if (!IsSystemName(topic.name)) {
    // Where to find it by id. A dead letter keeps its original's id, so the
    // broker's own topics stay out of the index.
    core_.batch().Put(keys::MessageIndex(message.id),
                      storage::EncodeLocation({topic.name, queue, offset}));
  }
  if (!q.in_open_round) {
    q.in_open_round = true;
    touched_.emplace_back(&topic, queue);
  }
  return offset;
}

void TopicManager::SealRound() {
  if (touched_.empty()) return;
  std::vector<std::tuple<TopicState*, uint32_t, uint64_t>> ends;
  ends.reserve(touched_.size());
  for (auto [topic, queue] : touched_) {
    QueueState& q = topic->queues[queue];
    q.in_open_round = false;
    ends.emplace_back(topic, queue, q.next_offset);
  }
  touched_.clear();
  core_.OnDurableFirst([this, ends = std::move(ends)](const Status& s) {
    if (!s.ok()) return;  // never visible: the broker refuses writes from now on
    for (auto [topic, queue, end] : ends) {
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
