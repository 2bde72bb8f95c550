// What the broker store writes: records inside commit-log entries, and the
// index (LevelDB) keys derived from them.
//
// Entry payload (one write round):
//   Payload   := Record*
//   Record    := type:u8 length:varint32 crc:u32 body   (length written in 5 bytes)
//     crc: masked CRC32C of type, length and body. Every read of a record
//     checks it, so one message is verified when it is read (the entry's
//     CRC covers the whole round and is checked when the log is scanned),
//     and a repair can tell the intact records of a damaged entry.
//   kMessage  body := topic_id:varint queue:varint offset:varint flags:u8 MessageRecord
//             flags bit 0: indexed by message id (dedup window, lookups)
//   kHalf     body := tx_id:lp index:varint delay_ms:varint MessageRecord
//   kDelayed  body := due_ms:varint seq:varint topic_id:varint queue:varint MessageRecord
//   kIndexOps body := (kPut key:lp value:lp | kDelete key:lp)*
// (MessageRecord: records.h.) Message bodies live only here; the index
// says where.
//
// Index keyspaces (the first byte names one):
//   'M' name                                    -> meta value
//   'T' topic name                              -> TopicEntry
//   'N' group name                              -> GroupEntry
//   'Q' topic_id:be32 queue:be32 first:be64     -> QueueRun: where offsets first.. are
//   'E' position:be64 topic_id:be32 queue:be32 first:be64 -> "" (runs by log position)
//   'S' topic_id:be32 queue:be32                -> first offset kept (fixed64)
//   'G' topic_id:be32 queue:be32 offset:be64    -> "" (a message removed from its queue)
//   'C' group 0 topic 0 queue:be32              -> cursor floor (fixed64)
//   'R' group 0 due_ms:be64 retry_id:be64       -> RetryRecord
//   'D' bucket:be64 message_id                  -> IdEntry (bucket = stored_ms / 60 s)
//   'L' due_ms:be64 seq:be64                    -> position (fixed64) of a kDelayed record
//   'X' tx_id                                   -> TxRecord
//   'H' tx_id 0 index:be32                      -> position (fixed64) of a kHalf record
//   'K' next_check_ms:be64 tx_id                -> "" (check schedule of open transactions)
//   'Z' expire_ms:be64 tx_id                    -> "" (when a resolved transaction goes)
// Derived from records (by ApplyEntry, on the live path and in recovery
// alike): Q, E, D, L, H. Everything else comes from kIndexOps.
//
// Names never contain 0x00 (txmq/names.h); big-endian numbers sort like
// the numbers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/src/records.h"

namespace txmq::storage::store {

enum RecordType : uint8_t { kMessage = 1, kHalf = 2, kDelayed = 3, kIndexOps = 4 };
enum OpType : uint8_t { kPut = 1, kDelete = 2 };
inline constexpr uint8_t kFlagIndexed = 1;
inline constexpr int64_t kIdBucketMs = 60'000;

inline constexpr char kMeta = 'M';
inline constexpr char kTopic = 'T';
inline constexpr char kGroup = 'N';
inline constexpr char kQueueRun = 'Q';
inline constexpr char kRunByPosition = 'E';
inline constexpr char kQueueStart = 'S';
inline constexpr char kRemoved = 'G';
inline constexpr char kCursor = 'C';
inline constexpr char kRetry = 'R';
inline constexpr char kId = 'D';
inline constexpr char kDelayedRef = 'L';
inline constexpr char kTx = 'X';
inline constexpr char kHalfRef = 'H';
inline constexpr char kCheck = 'K';
inline constexpr char kTxExpiry = 'Z';

// ---- records ----

// type, length, crc.
inline constexpr size_t kRecordHeaderBytes = 10;

// A record as found in a payload: `body` views into the payload.
struct RecordView {
  RecordType type;
  uint32_t offset_in_payload;  // of the record's first byte
  std::string_view body;
  // Header and body: where the next record starts.
  size_t size() const { return kRecordHeaderBytes + body.size(); }
};
// Reads the records of a payload; false if it is malformed or a record's
// checksum does not match.
bool ParseRecords(std::string_view payload, std::vector<RecordView>* out);
// The record at the start of `bytes` (a log view from a record position);
// false unless a whole record with a matching checksum starts there.
bool ParseRecordAt(std::string_view bytes, RecordView* out);

struct MessageBody {
  uint32_t topic_id = 0;
  uint32_t queue = 0;
  uint64_t offset = 0;
  uint8_t flags = 0;
  MessageView message;
};
struct HalfBody {
  std::string_view tx_id;
  uint32_t index = 0;
  uint64_t delay_ms = 0;
  MessageView message;
};
struct DelayedBody {
  int64_t due_ms = 0;
  uint64_t seq = 0;
  uint32_t topic_id = 0;
  uint32_t queue = 0;
  MessageView message;
};

// Appends a whole record (type, length, body) to `out`.
void AppendMessageRecord(const MessageBody& m, std::string* out);
void AppendHalfRecord(const HalfBody& h, std::string* out);
void AppendDelayedRecord(const DelayedBody& d, std::string* out);
// The record of a round's index operations (the OpType encoding above).
void AppendIndexOpsRecord(std::string_view ops, std::string* out);

bool DecodeMessageBody(std::string_view body, MessageBody* out);
bool DecodeHalfBody(std::string_view body, HalfBody* out);
bool DecodeDelayedBody(std::string_view body, DelayedBody* out);

// ---- index values ----

// Version 2 adds the creator; version 1 entries (older data dirs) decode
// with none.
struct TopicEntry {
  uint32_t id = 0;
  uint32_t queues = 0;
  int64_t created_ms = 0;
  // The principal whose request created it, when that principal is held
  // to per-principal limits ("" without CURVE, for admins, the broker's own
  // topics and entries older than the field): what its per-principal
  // topic count is made of, also after a restart.
  std::string creator;
};
std::string EncodeTopicEntry(const TopicEntry& t);
bool DecodeTopicEntry(std::string_view in, TopicEntry* out);

// A consumer group exists from its first pull until an operator deletes
// it; the entry says when it began and who began it (as for a topic).
struct GroupEntry {
  int64_t created_ms = 0;
  std::string creator;
};
std::string EncodeGroupEntry(const GroupEntry& g);
bool DecodeGroupEntry(std::string_view in, GroupEntry* out);

// Offsets first .. first+count-1 of a queue, written in one round: the
// log position of each.
struct QueueRun {
  uint64_t first_offset = 0;
  std::vector<uint64_t> positions;
  uint64_t end_offset() const { return first_offset + positions.size(); }
};
std::string EncodeQueueRun(const QueueRun& run);
bool DecodeQueueRun(uint64_t first_offset, std::string_view in, QueueRun* out);

// A message by id: where it is (or, for a delayed one, that it waits).
struct IdEntry {
  uint32_t topic_id = 0;
  uint32_t queue = 0;
  bool has_offset = false;
  uint64_t offset = 0;
  int64_t stored_ms = 0;
};
std::string EncodeIdEntry(const IdEntry& e);
bool DecodeIdEntry(std::string_view in, IdEntry* out);

// ---- keys ----

std::string MetaKey(std::string_view name);
std::string TopicKey(std::string_view name);
bool ParseTopicKey(std::string_view key, std::string_view* name);
std::string GroupKey(std::string_view name);
bool ParseGroupKey(std::string_view key, std::string_view* name);
std::string QueueRunKey(uint32_t topic_id, uint32_t queue, uint64_t first_offset);
std::string QueueRunPrefix(uint32_t topic_id, uint32_t queue);
bool ParseQueueRunKey(std::string_view key, uint32_t* topic_id, uint32_t* queue,
                      uint64_t* first_offset);
std::string RunByPositionKey(uint64_t position, uint32_t topic_id, uint32_t queue,
                             uint64_t first_offset);
bool ParseRunByPositionKey(std::string_view key, uint64_t* position, uint32_t* topic_id,
                           uint32_t* queue, uint64_t* first_offset);
std::string QueueStartKey(uint32_t topic_id, uint32_t queue);
std::string RemovedKey(uint32_t topic_id, uint32_t queue, uint64_t offset);
bool ParseRemovedKey(std::string_view key, uint32_t* topic_id, uint32_t* queue, uint64_t* offset);
std::string CursorKey(std::string_view group, std::string_view topic, uint32_t queue);
bool ParseCursorKey(std::string_view key, std::string_view* group, std::string_view* topic,
                    uint32_t* queue);
std::string RetryKey(std::string_view group, int64_t due_ms, uint64_t retry_id);
bool ParseRetryKey(std::string_view key, std::string_view* group, int64_t* due_ms,
                   uint64_t* retry_id);
std::string IdKey(uint64_t bucket, std::string_view message_id);
std::string IdBucketPrefix(uint64_t bucket);
bool ParseIdKey(std::string_view key, uint64_t* bucket, std::string_view* message_id);
std::string DelayedKey(int64_t due_ms, uint64_t seq);
bool ParseDelayedKey(std::string_view key, int64_t* due_ms, uint64_t* seq);
std::string TxKey(std::string_view tx_id);
std::string HalfKey(std::string_view tx_id, uint32_t index);
std::string HalfPrefix(std::string_view tx_id);
bool ParseHalfKey(std::string_view key, std::string_view* tx_id, uint32_t* index);
// 'K' and 'Z': a time first, so iteration visits what is due first.
std::string TimedTxKey(char keyspace, int64_t ms, std::string_view tx_id);
bool ParseTimedTxKey(std::string_view key, char keyspace, int64_t* ms, std::string_view* tx_id);

// The parsers return views into `key`: a temporary would leave them dangling.
bool ParseTopicKey(std::string&&, std::string_view*) = delete;
bool ParseGroupKey(std::string&&, std::string_view*) = delete;
bool ParseCursorKey(std::string&&, std::string_view*, std::string_view*, uint32_t*) = delete;
bool ParseRetryKey(std::string&&, std::string_view*, int64_t*, uint64_t*) = delete;
bool ParseIdKey(std::string&&, uint64_t*, std::string_view*) = delete;
bool ParseHalfKey(std::string&&, std::string_view*, uint32_t*) = delete;
bool ParseTimedTxKey(std::string&&, char, int64_t*, std::string_view*) = delete;

// One past the last key that starts with `prefix`.
std::string PrefixEnd(std::string prefix);

}  // namespace txmq::storage::store
