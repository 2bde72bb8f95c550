// The broker's LevelDB keyspaces. One database holds them all, so one
// WriteBatch can change several atomically (a message and its dedup entry;
// an ack and a retry entry). The first byte names the keyspace:
//
//   'q' topic 0x00 queue:be32 offset:be64     -> MessageRecord  (the queues)
//   't' topic                                 -> TopicRecord
//   's' topic 0x00 queue:be32                 -> fixed64 first offset kept (after retention)
//   'c' group 0x00 topic 0x00 queue:be32      -> fixed64 floor: offsets below are done
//   'r' group 0x00 due_ms:be64 retry_id:be64  -> RetryRecord    (redelivery schedule)
//   'd' bucket:be64 message_id                -> DedupRecord    (send dedup window)
//   'i' message_id                            -> LocationRecord (find a message by id)
//   'l' due_ms:be64 seq:be64                  -> DelayedRecord  (not yet visible)
//   'x' tx_id                                 -> TxRecord       (transactions)
//   'h' tx_id 0x00 index:be32                 -> HalfRecord     (messages of an open tx)
//   'k' next_check_ms:be64 tx_id              -> ""             (check schedule, open txs)
//   'z' expire_ms:be64 tx_id                  -> ""             (when a resolved tx is forgotten)
//   'm' name                                  -> broker metadata:
//       'm' "broker-time"                     -> fixed64 broker time (ms) at the last round
//
// Names never contain 0x00 (see txmq/names.h), so 0x00 ends a name and a
// prefix scan over "q<topic>\0" sees exactly one topic. Big-endian numbers
// sort like the numbers, so offsets and due times iterate in order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace txmq::storage::keys {

inline constexpr char kQueue = 'q';
inline constexpr char kTopic = 't';
inline constexpr char kQueueStart = 's';
inline constexpr char kCursor = 'c';
inline constexpr char kRetry = 'r';
inline constexpr char kDedup = 'd';
inline constexpr char kMessageIndex = 'i';
inline constexpr char kDelayed = 'l';
inline constexpr char kMeta = 'm';
inline constexpr char kTx = 'x';
inline constexpr char kHalf = 'h';
inline constexpr char kCheck = 'k';
inline constexpr char kTxExpiry = 'z';

std::string Message(std::string_view topic, uint32_t queue, uint64_t offset);
// Prefix of every message of one queue.
std::string QueuePrefix(std::string_view topic, uint32_t queue);
bool ParseMessage(std::string_view key, std::string_view* topic, uint32_t* queue, uint64_t* offset);

std::string Topic(std::string_view topic);
bool ParseTopic(std::string_view key, std::string_view* topic);

std::string Cursor(std::string_view group, std::string_view topic, uint32_t queue);
bool ParseCursor(std::string_view key, std::string_view* group, std::string_view* topic,
                 uint32_t* queue);

std::string Retry(std::string_view group, uint64_t due_ms, uint64_t retry_id);
bool ParseRetry(std::string_view key, std::string_view* group, uint64_t* due_ms,
                uint64_t* retry_id);

// Dedup entries are grouped in time buckets so that expiry deletes whole
// key ranges in order.
std::string Dedup(uint64_t bucket, std::string_view message_id);
std::string DedupBucketPrefix(uint64_t bucket);
bool ParseDedup(std::string_view key, uint64_t* bucket, std::string_view* message_id);

std::string QueueStart(std::string_view topic, uint32_t queue);

std::string MessageIndex(std::string_view message_id);

std::string Delayed(uint64_t due_ms, uint64_t seq);
bool ParseDelayed(std::string_view key, uint64_t* due_ms, uint64_t* seq);

std::string Meta(std::string_view name);
// Broker time written with every commit round (broker/src/clock.h).
inline std::string BrokerTime() { return Meta("broker-time"); }

std::string Tx(std::string_view tx_id);
std::string Half(std::string_view tx_id, uint32_t index);
std::string HalfPrefix(std::string_view tx_id);
// A schedule entry: `ms` first, so iteration visits what is due first.
std::string TimedTx(char keyspace, uint64_t ms, std::string_view tx_id);
bool ParseTimedTx(std::string_view key, char keyspace, uint64_t* ms, std::string_view* tx_id);
bool ParseTimedTx(std::string&&, char, uint64_t*, std::string_view*) = delete;

// The parsers return views into `key`: a temporary would leave them dangling.
bool ParseMessage(std::string&&, std::string_view*, uint32_t*, uint64_t*) = delete;
bool ParseTopic(std::string&&, std::string_view*) = delete;
bool ParseCursor(std::string&&, std::string_view*, std::string_view*, uint32_t*) = delete;
bool ParseRetry(std::string&&, std::string_view*, uint64_t*, uint64_t*) = delete;
bool ParseDedup(std::string&&, uint64_t*, std::string_view*) = delete;

// One past the last key that starts with `prefix` (for iteration bounds).
std::string PrefixEnd(std::string prefix);

}  // namespace txmq::storage::keys
