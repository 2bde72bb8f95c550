#include "consumer/src/inbox_records.h"

#include "protocol/src/util.h"
#include "storage/src/coding.h"
#include "storage/src/db.h"

namespace txmq::inbox {

namespace {

std::string Suffix(const std::string& group, const std::string& dedup_key) {
  std::string s = group;
  s += '\0';
  s += dedup_key;
  return s;
}

}  // namespace

std::string RecordKey(const std::string& group, const std::string& dedup_key) {
  return ReservedKey("i/r/" + Suffix(group, dedup_key));
}

Result<std::optional<InboxRecord>> Read(LocalStore& store, const std::string& record_key) {
  std::string value;
  const leveldb::Status got = store.impl().db()->Get(storage::CheckedReads(), record_key, &value);
  if (got.IsNotFound()) return std::optional<InboxRecord>();
  if (!got.ok()) return Status::Unavailable("reading inbox record: " + got.ToString());
  std::string_view in(value);
  uint8_t state;
  uint64_t time_ms;
  std::string_view note;
  if (!storage::GetByte(&in, &state) || state > static_cast<uint8_t>(InboxState::kSkipped) ||
      !storage::GetFixed64(&in, &time_ms) || !storage::GetLengthPrefixed(&in, &note)) {
    return Status::Corruption("inbox record is malformed");
  }
  return std::optional<InboxRecord>(InboxRecord{static_cast<InboxState>(state),
                                                FromEpochMs(static_cast<int64_t>(time_ms)),
                                                std::string(note)});
}

void Write(LocalTxn& txn, const std::string& group, const std::string& dedup_key, InboxState state,
           const std::string& note, int64_t at_ms) {
  const int64_t now = at_ms != 0 ? at_ms : NowMs();
  std::string value(1, static_cast<char>(state));
  storage::PutFixed64(&value, static_cast<uint64_t>(now));
  storage::PutLengthPrefixed(&value, note);
  txn.impl().PutInternal(RecordKey(group, dedup_key), value);
  std::string index = ReservedKey("i/e/");
  storage::PutBe64(&index, static_cast<uint64_t>(now));
  index += Suffix(group, dedup_key);
  txn.impl().PutInternal(index, "");
}

}  // namespace txmq::inbox
