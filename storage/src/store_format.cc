#include "storage/src/store_format.h"

#include <cstring>

#include "storage/src/coding.h"
#include "storage/src/crc32c.h"

namespace txmq::storage::store {

namespace {

bool GetName(std::string_view* in, std::string_view* name) {
  const size_t end = in->find('\0');
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

// Record framing around a body that `fill` appends to `out` in place: the
// length is written as a 5-byte varint (continuation bits on the first
// four) and patched afterwards, with the checksum, so the body is never
// copied.
template <typename Fill>
void AppendRecord(RecordType type, std::string* out, Fill&& fill) {
  const size_t at = out->size();
  out->push_back(static_cast<char>(type));
  out->append(kRecordHeaderBytes - 1, '\0');
  const size_t body_at = out->size();
  fill(out);
  auto length = static_cast<uint32_t>(out->size() - body_at);
  char* p = out->data() + at + 1;
  for (int i = 0; i < 4; ++i, length >>= 7) p[i] = static_cast<char>((length & 0x7f) | 0x80);
  p[4] = static_cast<char>(length & 0x7f);
  uint32_t crc = crc32c::Value(out->data() + at, 6);
  crc = crc32c::Mask(crc32c::Extend(crc, out->data() + body_at, out->size() - body_at));
  std::memcpy(p + 5, &crc, 4);
}

}  // namespace

bool ParseRecordAt(std::string_view bytes, RecordView* out) {
  std::string_view in = bytes;
  uint8_t type;
  uint32_t length;
  if (!GetByte(&in, &type) || type < kMessage || type > kIndexOps || !GetVarint32(&in, &length) ||
      in.size() < 4 || bytes.size() - in.size() != 6 || length > in.size() - 4) {
    return false;
  }
  uint32_t stored;
  std::memcpy(&stored, in.data(), 4);
  const std::string_view body = in.substr(4, length);
  const uint32_t crc = crc32c::Extend(crc32c::Value(bytes.data(), 6), body.data(), body.size());
  if (crc32c::Mask(crc) != stored) return false;
  out->type = static_cast<RecordType>(type);
  out->offset_in_payload = 0;
  out->body = body;
  return true;
}

bool ParseRecords(std::string_view payload, std::vector<RecordView>* out) {
  out->clear();
  size_t at = 0;
  while (at < payload.size()) {
    RecordView r;
    if (!ParseRecordAt(payload.substr(at), &r)) return false;
    r.offset_in_payload = static_cast<uint32_t>(at);
    at += r.size();
    out->push_back(r);
  }
  return true;
}

void AppendMessageRecord(const MessageBody& m, std::string* out) {
  AppendRecord(kMessage, out, [&](std::string* b) {
    PutVarint64(b, m.topic_id);
    PutVarint64(b, m.queue);
    PutVarint64(b, m.offset);
    b->push_back(static_cast<char>(m.flags));
    EncodeMessage(m.message, b);
  });
}

void AppendHalfRecord(const HalfBody& h, std::string* out) {
  AppendRecord(kHalf, out, [&](std::string* b) {
    PutLengthPrefixed(b, h.tx_id);
    PutVarint64(b, h.index);
    PutVarint64(b, h.delay_ms);
    EncodeMessage(h.message, b);
  });
}

void AppendIndexOpsRecord(std::string_view ops, std::string* out) {
  AppendRecord(kIndexOps, out, [&](std::string* b) { b->append(ops); });
}

void AppendDelayedRecord(const DelayedBody& d, std::string* out) {
  AppendRecord(kDelayed, out, [&](std::string* b) {
    PutVarint64(b, static_cast<uint64_t>(d.due_ms));
    PutVarint64(b, d.seq);
    PutVarint64(b, d.topic_id);
    PutVarint64(b, d.queue);
    EncodeMessage(d.message, b);
  });
}

bool DecodeMessageBody(std::string_view in, MessageBody* out) {
  return GetVarint32(&in, &out->topic_id) && GetVarint32(&in, &out->queue) &&
         GetVarint64(&in, &out->offset) && GetByte(&in, &out->flags) &&
         DecodeMessage(in, &out->message);
}

bool DecodeHalfBody(std::string_view in, HalfBody* out) {
  return GetLengthPrefixed(&in, &out->tx_id) && GetVarint32(&in, &out->index) &&
         GetVarint64(&in, &out->delay_ms) && DecodeMessage(in, &out->message);
}

bool DecodeDelayedBody(std::string_view in, DelayedBody* out) {
  uint64_t due;
  if (!GetVarint64(&in, &due) || !GetVarint64(&in, &out->seq) ||
      !GetVarint32(&in, &out->topic_id) || !GetVarint32(&in, &out->queue)) {
    return false;
  }
  out->due_ms = static_cast<int64_t>(due);
  return DecodeMessage(in, &out->message);
}

// ---- values ----

std::string EncodeTopicEntry(const TopicEntry& t) {
  std::string out(1, '\x02');
  PutVarint64(&out, t.id);
  PutVarint64(&out, t.queues);
  PutFixed64(&out, static_cast<uint64_t>(t.created_ms));
  PutLengthPrefixed(&out, t.creator);
  return out;
}

bool DecodeTopicEntry(std::string_view in, TopicEntry* t) {
  uint8_t version;
  uint64_t created;
  if (!GetByte(&in, &version) || (version != 1 && version != 2) || !GetVarint32(&in, &t->id) ||
      !GetVarint32(&in, &t->queues) || !GetFixed64(&in, &created)) {
    return false;
  }
  t->created_ms = static_cast<int64_t>(created);
  std::string_view creator;
  if (version >= 2 && !GetLengthPrefixed(&in, &creator)) return false;
  t->creator = std::string(creator);
  return in.empty();
}

std::string EncodeGroupEntry(const GroupEntry& g) {
  std::string out(1, '\x01');
  PutFixed64(&out, static_cast<uint64_t>(g.created_ms));
  PutLengthPrefixed(&out, g.creator);
  return out;
}

bool DecodeGroupEntry(std::string_view in, GroupEntry* g) {
  uint8_t version;
  uint64_t created;
  std::string_view creator;
  if (!GetByte(&in, &version) || version != 1 || !GetFixed64(&in, &created) ||
      !GetLengthPrefixed(&in, &creator) || !in.empty()) {
    return false;
  }
  g->created_ms = static_cast<int64_t>(created);
  g->creator = std::string(creator);
  return true;
}

std::string EncodeQueueRun(const QueueRun& run) {
  std::string out;
  PutVarint64(&out, run.positions.size());
  if (run.positions.empty()) return out;
  PutFixed64(&out, run.positions[0]);
  for (size_t i = 1; i < run.positions.size(); ++i) {
    PutVarint64(&out, run.positions[i] - run.positions[i - 1]);
  }
  return out;
}

bool DecodeQueueRun(uint64_t first_offset, std::string_view in, QueueRun* out) {
  uint64_t count, position;
  if (!GetVarint64(&in, &count) || count == 0 || count > in.size() || !GetFixed64(&in, &position)) {
    return false;
  }
  out->first_offset = first_offset;
  out->positions.clear();
  out->positions.reserve(count);
  out->positions.push_back(position);
  for (uint64_t i = 1; i < count; ++i) {
    uint64_t delta;
    if (!GetVarint64(&in, &delta)) return false;
    position += delta;
    out->positions.push_back(position);
  }
  return in.empty();
}

std::string EncodeIdEntry(const IdEntry& e) {
  std::string out;
  PutVarint64(&out, e.topic_id);
  PutVarint64(&out, e.queue);
  out.push_back(e.has_offset ? 1 : 0);
  PutVarint64(&out, e.offset);
  PutVarint64(&out, static_cast<uint64_t>(e.stored_ms));
  return out;
}

bool DecodeIdEntry(std::string_view in, IdEntry* e) {
  uint8_t has_offset;
  uint64_t stored;
  if (!GetVarint32(&in, &e->topic_id) || !GetVarint32(&in, &e->queue) ||
      !GetByte(&in, &has_offset) || !GetVarint64(&in, &e->offset) || !GetVarint64(&in, &stored) ||
      !in.empty()) {
    return false;
  }
  e->has_offset = has_offset != 0;
  e->stored_ms = static_cast<int64_t>(stored);
  return true;
}

// ---- keys ----

std::string MetaKey(std::string_view name) {
  std::string k(1, kMeta);
  k += name;
  return k;
}

std::string TopicKey(std::string_view name) {
  std::string k(1, kTopic);
  k += name;
  return k;
}

bool ParseTopicKey(std::string_view key, std::string_view* name) {
  if (!TakeTag(&key, kTopic) || key.empty()) return false;
  *name = key;
  return true;
}

std::string GroupKey(std::string_view name) {
  std::string k(1, kGroup);
  k += name;
  return k;
}

bool ParseGroupKey(std::string_view key, std::string_view* name) {
  if (!TakeTag(&key, kGroup) || key.empty()) return false;
  *name = key;
  return true;
}

std::string QueueRunPrefix(uint32_t topic_id, uint32_t queue) {
  std::string k(1, kQueueRun);
  PutBe32(&k, topic_id);
  PutBe32(&k, queue);
  return k;
}

std::string QueueRunKey(uint32_t topic_id, uint32_t queue, uint64_t first_offset) {
  std::string k = QueueRunPrefix(topic_id, queue);
  PutBe64(&k, first_offset);
  return k;
}

bool ParseQueueRunKey(std::string_view key, uint32_t* topic_id, uint32_t* queue,
                      uint64_t* first_offset) {
  return TakeTag(&key, kQueueRun) && GetBe32(&key, topic_id) && GetBe32(&key, queue) &&
         GetBe64(&key, first_offset) && key.empty();
}

std::string RunByPositionKey(uint64_t position, uint32_t topic_id, uint32_t queue,
                             uint64_t first_offset) {
  std::string k(1, kRunByPosition);
  PutBe64(&k, position);
  PutBe32(&k, topic_id);
  PutBe32(&k, queue);
  PutBe64(&k, first_offset);
  return k;
}

bool ParseRunByPositionKey(std::string_view key, uint64_t* position, uint32_t* topic_id,
                           uint32_t* queue, uint64_t* first_offset) {
  return TakeTag(&key, kRunByPosition) && GetBe64(&key, position) && GetBe32(&key, topic_id) &&
         GetBe32(&key, queue) && GetBe64(&key, first_offset) && key.empty();
}

std::string QueueStartKey(uint32_t topic_id, uint32_t queue) {
  std::string k(1, kQueueStart);
  PutBe32(&k, topic_id);
  PutBe32(&k, queue);
  return k;
}

std::string RemovedKey(uint32_t topic_id, uint32_t queue, uint64_t offset) {
  std::string k(1, kRemoved);
  PutBe32(&k, topic_id);
  PutBe32(&k, queue);
  PutBe64(&k, offset);
  return k;
}

bool ParseRemovedKey(std::string_view key, uint32_t* topic_id, uint32_t* queue, uint64_t* offset) {
  return TakeTag(&key, kRemoved) && GetBe32(&key, topic_id) && GetBe32(&key, queue) &&
         GetBe64(&key, offset) && key.empty();
}

std::string CursorKey(std::string_view group, std::string_view topic, uint32_t queue) {
  std::string k(1, kCursor);
  k += group;
  k += '\0';
  k += topic;
  k += '\0';
  PutBe32(&k, queue);
  return k;
}

bool ParseCursorKey(std::string_view key, std::string_view* group, std::string_view* topic,
                    uint32_t* queue) {
  return TakeTag(&key, kCursor) && GetName(&key, group) && GetName(&key, topic) &&
         GetBe32(&key, queue) && key.empty();
}

std::string RetryKey(std::string_view group, int64_t due_ms, uint64_t retry_id) {
  std::string k(1, kRetry);
  k += group;
  k += '\0';
  PutBe64(&k, static_cast<uint64_t>(due_ms));
  PutBe64(&k, retry_id);
  return k;
}

bool ParseRetryKey(std::string_view key, std::string_view* group, int64_t* due_ms,
                   uint64_t* retry_id) {
  uint64_t due;
  if (!TakeTag(&key, kRetry) || !GetName(&key, group) || !GetBe64(&key, &due) ||
      !GetBe64(&key, retry_id) || !key.empty()) {
    return false;
  }
  *due_ms = static_cast<int64_t>(due);
  return true;
}

std::string IdBucketPrefix(uint64_t bucket) {
  std::string k(1, kId);
  PutBe64(&k, bucket);
  return k;
}

std::string IdKey(uint64_t bucket, std::string_view message_id) {
  std::string k = IdBucketPrefix(bucket);
  k += message_id;
  return k;
}

bool ParseIdKey(std::string_view key, uint64_t* bucket, std::string_view* message_id) {
  if (!TakeTag(&key, kId) || !GetBe64(&key, bucket) || key.empty()) return false;
  *message_id = key;
  return true;
}

std::string DelayedKey(int64_t due_ms, uint64_t seq) {
  std::string k(1, kDelayedRef);
  PutBe64(&k, static_cast<uint64_t>(due_ms));
  PutBe64(&k, seq);
  return k;
}

bool ParseDelayedKey(std::string_view key, int64_t* due_ms, uint64_t* seq) {
  uint64_t due;
  if (!TakeTag(&key, kDelayedRef) || !GetBe64(&key, &due) || !GetBe64(&key, seq) || !key.empty()) {
    return false;
  }
  *due_ms = static_cast<int64_t>(due);
  return true;
}

std::string TxKey(std::string_view tx_id) {
  std::string k(1, kTx);
  k += tx_id;
  return k;
}

std::string HalfPrefix(std::string_view tx_id) {
  std::string k(1, kHalfRef);
  k += tx_id;
  k += '\0';
  return k;
}

std::string HalfKey(std::string_view tx_id, uint32_t index) {
  std::string k = HalfPrefix(tx_id);
  PutBe32(&k, index);
  return k;
}

bool ParseHalfKey(std::string_view key, std::string_view* tx_id, uint32_t* index) {
  return TakeTag(&key, kHalfRef) && GetName(&key, tx_id) && GetBe32(&key, index) && key.empty();
}

std::string TimedTxKey(char keyspace, int64_t ms, std::string_view tx_id) {
  std::string k(1, keyspace);
  PutBe64(&k, static_cast<uint64_t>(ms));
  k += tx_id;
  return k;
}

bool ParseTimedTxKey(std::string_view key, char keyspace, int64_t* ms, std::string_view* tx_id) {
  uint64_t v;
  if (!TakeTag(&key, keyspace) || !GetBe64(&key, &v) || key.empty()) return false;
  *ms = static_cast<int64_t>(v);
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
  return prefix;
}

}  // namespace txmq::storage::store
