#include "storage/src/keys.h"

#include "storage/src/coding.h"

namespace txmq::storage::keys {
namespace {

// Reads "name\0" from the front of *in.
bool GetName(std::string_view* in, std::string_view* name) {
  size_t end = in->find('\0');
  if (end == std::string_view::npos) return false;
  *name = in->substr(0, end);
  in->remove_prefix(end + 1);
  return true;
}

bool TakeTag(std::string_view* in, char tag) {
  if (in->empty() || in->front() != tag) return false;
  in->remove_prefix(1);
  return true;
}

}  // namespace

std::string QueuePrefix(std::string_view topic, uint32_t queue) {
  std::string k;
  k.reserve(topic.size() + 6);
  k += kQueue;
  k += topic;
  k += '\0';
  PutBe32(&k, queue);
  return k;
}

std::string Message(std::string_view topic, uint32_t queue, uint64_t offset) {
  std::string k = QueuePrefix(topic, queue);
  PutBe64(&k, offset);
  return k;
}

bool ParseMessage(std::string_view key, std::string_view* topic, uint32_t* queue,
                  uint64_t* offset) {
  return TakeTag(&key, kQueue) && GetName(&key, topic) && GetBe32(&key, queue) &&
         GetBe64(&key, offset) && key.empty();
}

std::string Topic(std::string_view topic) {
  std::string k(1, kTopic);
  k += topic;
  return k;
}

bool ParseTopic(std::string_view key, std::string_view* topic) {
  if (!TakeTag(&key, kTopic)) return false;
  *topic = key;
  return !key.empty();
}

std::string Cursor(std::string_view group, std::string_view topic, uint32_t queue) {
  std::string k(1, kCursor);
  k += group;
  k += '\0';
  k += topic;
  k += '\0';
  PutBe32(&k, queue);
  return k;
}

bool ParseCursor(std::string_view key, std::string_view* group, std::string_view* topic,
                 uint32_t* queue) {
  return TakeTag(&key, kCursor) && GetName(&key, group) && GetName(&key, topic) &&
         GetBe32(&key, queue) && key.empty();
}

std::string Retry(std::string_view group, uint64_t due_ms, uint64_t retry_id) {
  std::string k(1, kRetry);
  k += group;
  k += '\0';
  PutBe64(&k, due_ms);
  PutBe64(&k, retry_id);
  return k;
}

bool ParseRetry(std::string_view key, std::string_view* group, uint64_t* due_ms,
                uint64_t* retry_id) {
  return TakeTag(&key, kRetry) && GetName(&key, group) && GetBe64(&key, due_ms) &&
         GetBe64(&key, retry_id) && key.empty();
}

std::string DedupBucketPrefix(uint64_t bucket) {
  std::string k(1, kDedup);
  PutBe64(&k, bucket);
  return k;
}

std::string Dedup(uint64_t bucket, std::string_view message_id) {
  std::string k = DedupBucketPrefix(bucket);
  k += message_id;
  return k;
}

bool ParseDedup(std::string_view key, uint64_t* bucket, std::string_view* message_id) {
  if (!TakeTag(&key, kDedup) || !GetBe64(&key, bucket)) return false;
  *message_id = key;
  return true;
}

std::string MessageIndex(std::string_view message_id) {
  std::string k(1, kMessageIndex);
  k += message_id;
  return k;
}

std::string QueueStart(std::string_view topic, uint32_t queue) {
  std::string k(1, kQueueStart);
  k += topic;
  k += '\0';
  PutBe32(&k, queue);
  return k;
}

std::string Delayed(uint64_t due_ms, uint64_t seq) {
  std::string k(1, kDelayed);
  PutBe64(&k, due_ms);
  PutBe64(&k, seq);
  return k;
}

bool ParseDelayed(std::string_view key, uint64_t* due_ms, uint64_t* seq) {
  return TakeTag(&key, kDelayed) && GetBe64(&key, due_ms) && GetBe64(&key, seq) && key.empty();
}

std::string Meta(std::string_view name) {
  std::string k(1, kMeta);
  k += name;
  return k;
}

std::string Tx(std::string_view tx_id) {
  std::string k(1, kTx);
  k += tx_id;
  return k;
}

std::string HalfPrefix(std::string_view tx_id) {
  std::string k(1, kHalf);
  k += tx_id;
  k += '\0';
  return k;
}

std::string Half(std::string_view tx_id, uint32_t index) {
  std::string k = HalfPrefix(tx_id);
  PutBe32(&k, index);
  return k;
}

std::string TimedTx(char keyspace, uint64_t ms, std::string_view tx_id) {
  std::string k(1, keyspace);
  PutBe64(&k, ms);
  k += tx_id;
  return k;
}

bool ParseTimedTx(std::string_view key, char keyspace, uint64_t* ms, std::string_view* tx_id) {
  if (!TakeTag(&key, keyspace) || !GetBe64(&key, ms) || key.empty()) return false;
  *tx_id = key;
  return true;
}

std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last != 0xff) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;  // empty: no upper bound
}

}  // namespace txmq::storage::keys
