#include "broker/src/delayed.h"

#include <limits>
#include <memory>

#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::broker {

Status DelayedMessages::Recover() {
  Status s = core_.store().ForEachDelayed([&](int64_t due, uint64_t seq) {
    due_.emplace(due, seq);
    next_seq_ = std::max(next_seq_, seq + 1);
    return true;
  });
  if (!s.ok()) return s;
  if (!due_.empty()) Logger("broker")->info("{} delayed messages waiting", due_.size());
  return Status::OK();
}

uint64_t DelayedMessages::Add(int64_t due_ms, const TopicState& topic, uint32_t queue,
                              const storage::MessageView& message) {
  const uint64_t seq = next_seq_++;
  added_.emplace(due_ms, seq);
  core_.store().PutDelayed({due_ms, seq, topic.id, queue, message});
  return seq;
}

void DelayedMessages::Tick(int64_t now_ms, uint32_t budget) {
  if (core_.storage_failed()) return;
  while (!due_.empty() && due_.begin()->first <= now_ms && budget-- > 0) {
    auto [due, seq] = *due_.begin();
    due_.erase(due_.begin());
    auto stored = core_.store().ReadDelayed(due, seq);
    if (stored.status().code() == StatusCode::kNotFound) {
      continue;  // dropped while its send's round was in flight (its topic deleted)
    }
    if (!stored.ok()) {
      Logger("broker")->error(
          "delayed message {} due at {} is unreadable ({}); left in place (tried again after a "
          "restart, dropped when retention deletes its segment)",
          seq, due, stored.status().ToString());
      stranded_.emplace(due, seq);
      continue;
    }
    storage::store::DelayedBody& d = stored->body;
    TopicState* topic = topics_.FindById(d.topic_id);
    if (topic == nullptr) {
      Logger("broker")->info("delayed message {} is due for a deleted topic; dropped it",
                             d.message.id);
      Drop(due, seq, d);
      continue;
    }
    if (d.queue >= topic->queues.size()) {
      Logger("broker")->error("delayed message {} names topic {} queue {} that cannot take it",
                              d.message.id, d.topic_id, d.queue);
      stranded_.emplace(due, seq);
      continue;
    }
    d.message.stored_ms = now_ms;  // retention counts from when it became visible
    topics_.Append(*topic, d.queue, d.message);
    core_.store().DeleteDelayed(due, seq);
  }
}

void DelayedMessages::Drop(int64_t due_ms, uint64_t seq, const storage::store::DelayedBody& d) {
  storage::BrokerStore& store = core_.store();
  due_.erase({due_ms, seq});
  stranded_.erase({due_ms, seq});
  store.DeleteDelayed(due_ms, seq);
  const uint64_t bucket = static_cast<uint64_t>(d.message.stored_ms) / storage::store::kIdBucketMs;
  if (auto id = store.GetId(bucket, d.message.id); id && id->topic_id == d.topic_id) {
    store.DeleteId(bucket, d.message.id);
  }
}

void DelayedMessages::Forget(int64_t due_ms, uint64_t seq) {
  stranded_.erase({due_ms, seq});
  core_.store().DeleteDelayed(due_ms, seq);
}

int64_t DelayedMessages::NextDueMs() const {
  return due_.empty() ? std::numeric_limits<int64_t>::max() : due_.begin()->first;
}

}  // namespace txmq::broker
