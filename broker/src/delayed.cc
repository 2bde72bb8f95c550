#include "broker/src/delayed.h"

#include <limits>
#include <memory>

#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "storage/src/coding.h"
#include "storage/src/keys.h"

namespace txmq::broker {

namespace keys = storage::keys;

Status DelayedMessages::Recover() {
  std::unique_ptr<leveldb::Iterator> it(core_.db()->NewIterator(leveldb::ReadOptions()));
  const std::string prefix(1, keys::kDelayed);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    uint64_t due, seq;
    if (!keys::ParseDelayed(it->key().ToString(), &due, &seq)) {
      return Status::Corruption("bad delayed-message key");
    }
    due_.emplace(static_cast<int64_t>(due), seq);
    next_seq_ = std::max(next_seq_, seq + 1);
  }
  if (!due_.empty()) Logger("broker")->info("{} delayed messages waiting", due_.size());
  return Status::OK();
}

uint64_t DelayedMessages::Add(int64_t due_ms, uint32_t queue, const storage::MessageView& message) {
  const uint64_t seq = next_seq_++;
  std::string value;
  storage::PutVarint64(&value, queue);
  storage::EncodeMessage(message, &value);
  core_.batch().Put(keys::Delayed(static_cast<uint64_t>(due_ms), seq), value);
  return seq;
}

void DelayedMessages::Tick(int64_t now_ms, uint32_t budget) {
  if (core_.storage_failed()) return;
  while (!due_.empty() && due_.begin()->first <= now_ms && budget-- > 0) {
    auto [due, seq] = *due_.begin();
    due_.erase(due_.begin());
    const std::string key = keys::Delayed(static_cast<uint64_t>(due), seq);
    std::string value;
    leveldb::Status s = core_.db()->Get(leveldb::ReadOptions(), key, &value);
    std::string_view in(value);
    uint32_t queue;
    storage::MessageView m;
    if (!s.ok() || !storage::GetVarint32(&in, &queue) || !storage::DecodeMessage(in, &m)) {
      Logger("broker")->error("delayed message {} due at {} is unreadable ({}); left in place", seq,
                              due, s.ToString());
      continue;
    }
    auto topic = topics_.GetOrCreate(m.topic, true);
    if (!topic.ok() || queue >= (*topic)->queues.size()) {
      Logger("broker")->error("delayed message {} names topic '{}' queue {} that cannot take it",
                              m.id, m.topic, queue);
      continue;
    }
    m.stored_ms = now_ms;  // retention counts from when it became visible
    topics_.Append(**topic, queue, m);
    core_.batch().Delete(key);
  }
}

int64_t DelayedMessages::NextDueMs() const {
  return due_.empty() ? std::numeric_limits<int64_t>::max() : due_.begin()->first;
}

}  // namespace txmq::broker
