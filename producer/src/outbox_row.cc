#include "producer/src/outbox_row.h"

#include "protocol/src/util.h"
#include "storage/src/coding.h"
#include "storage/src/local_store_impl.h"

namespace txmq::outbox {

namespace s = txmq::storage;

std::string PendingPrefix() { return ReservedKey(kOutboxPendingTable); }
std::string ParkedPrefix() { return ReservedKey(kOutboxParkedTable); }

std::string PendingKey(uint64_t seq) {
  std::string k = PendingPrefix();
  s::PutBe64(&k, seq);
  return k;
}

std::string ParkedKey(uint64_t seq) {
  std::string k = ParkedPrefix();
  s::PutBe64(&k, seq);
  return k;
}

bool ParseSeq(std::string_view key, std::string_view prefix, uint64_t* seq) {
  if (!key.starts_with(prefix)) return false;
  key.remove_prefix(prefix.size());
  return s::GetBe64(&key, seq) && key.empty();
}

std::string EncodeRow(const StoredRow& row) {
  const Message& m = row.message;
  std::string out(1, '\x01');
  s::PutLengthPrefixed(&out, m.id);
  s::PutLengthPrefixed(&out, m.topic);
  s::PutLengthPrefixed(&out, m.key);
  s::PutVarint64(&out, m.properties.size());
  for (const auto& [k, v] : m.properties) {
    s::PutLengthPrefixed(&out, k);
    s::PutLengthPrefixed(&out, v);
  }
  s::PutLengthPrefixed(&out, m.body);
  s::PutVarint64(&out, static_cast<uint64_t>(m.delay.count()));
  s::PutFixed64(&out, static_cast<uint64_t>(row.created_ms));
  s::PutVarint64(&out, row.attempts);
  s::PutFixed64(&out, static_cast<uint64_t>(row.next_attempt_ms));
  s::PutLengthPrefixed(&out, row.last_error);
  return out;
}

bool DecodeRow(std::string_view in, StoredRow* row) {
  uint8_t version;
  std::string_view id, topic, key, body, error;
  uint64_t nprops, delay, created, next;
  if (!s::GetByte(&in, &version) || version != 1 || !s::GetLengthPrefixed(&in, &id) ||
      !s::GetLengthPrefixed(&in, &topic) || !s::GetLengthPrefixed(&in, &key) ||
      !s::GetVarint64(&in, &nprops) || nprops > in.size()) {
    return false;
  }
  Message& m = row->message;
  m.properties.clear();
  for (uint64_t i = 0; i < nprops; ++i) {
    std::string_view k, v;
    if (!s::GetLengthPrefixed(&in, &k) || !s::GetLengthPrefixed(&in, &v)) return false;
    m.properties.emplace(std::string(k), std::string(v));
  }
  if (!s::GetLengthPrefixed(&in, &body) || !s::GetVarint64(&in, &delay) ||
      !s::GetFixed64(&in, &created) || !s::GetVarint32(&in, &row->attempts) ||
      !s::GetFixed64(&in, &next) || !s::GetLengthPrefixed(&in, &error) || !in.empty()) {
    return false;
  }
  m.id.assign(id);
  m.topic.assign(topic);
  m.key.assign(key);
  m.body.assign(body);
  m.delay = std::chrono::milliseconds(delay);
  row->created_ms = static_cast<int64_t>(created);
  row->next_attempt_ms = static_cast<int64_t>(next);
  row->last_error.assign(error);
  return true;
}

std::string RecordKey(std::string_view message_id) {
  std::string k = ReservedKey("o/r/");
  k += message_id;
  return k;
}

Result<std::optional<Record>> ReadRecord(LocalStore& store, std::string_view message_id) {
  auto value = store.impl().Get(RecordKey(message_id));
  if (value.status().code() == StatusCode::kNotFound) return std::optional<Record>();
  if (!value.ok()) return value.status();
  std::string_view in(*value);
  uint8_t state;
  uint64_t time_ms;
  std::string_view note;
  if (!s::GetByte(&in, &state) || !s::GetFixed64(&in, &time_ms) ||
      !s::GetLengthPrefixed(&in, &note)) {
    return Status::Corruption("origin record of message " + std::string(message_id) +
                              " is malformed");
  }
  return std::optional<Record>(
      Record{static_cast<char>(state), static_cast<int64_t>(time_ms), std::string(note)});
}

void PutRecord(LocalTxn& txn, std::string_view message_id, char state, std::string_view note) {
  const int64_t now = NowMs();
  std::string value(1, state);
  s::PutFixed64(&value, static_cast<uint64_t>(now));
  s::PutLengthPrefixed(&value, note);
  txn.impl().PutInternal(RecordKey(message_id), value);
  std::string index = ReservedKey("o/e/");
  s::PutBe64(&index, static_cast<uint64_t>(now));
  index += message_id;
  txn.impl().PutInternal(index, "");
}

OutboxRow ToPublic(const StoredRow& row, uint64_t seq, bool parked) {
  OutboxRow r;
  r.id = row.message.id;
  r.seq = seq;
  r.parked = parked;
  r.message = row.message;
  r.attempts = row.attempts;
  r.last_error = row.last_error;
  r.created_at = FromEpochMs(row.created_ms);
  r.next_attempt_at = FromEpochMs(row.next_attempt_ms);
  return r;
}

}  // namespace txmq::outbox
