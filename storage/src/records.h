// Records the broker store keeps (store_format.h says where). Each starts
// with a format version byte so a later release can read what an earlier
// one wrote.
//
//   MessageRecord := 0x01 flags:u8 born_ms:fixed64 stored_ms:fixed64
//                    id:lp topic:lp key:lp nprops:varint (name:lp value:lp)* body:lp
//   RetryRecord   := 0x01 topic:lp queue:varint offset:varint delivery_count:varint
//                    max_reconsume:varint [source:LocationRecord]
//   LocationRecord := topic:lp queue:varint offset:varint
//
// Decoders return views into the value they were given; the value must
// outlive them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace txmq::storage {

struct MessageView {
  uint8_t flags = 0;
  int64_t born_ms = 0;
  int64_t stored_ms = 0;
  std::string_view id;
  std::string_view topic;
  std::string_view key;
  std::vector<std::pair<std::string_view, std::string_view>> properties;
  std::string_view body;
};

void EncodeMessage(const MessageView& m, std::string* out);
bool DecodeMessage(std::string_view value, MessageView* out);

struct Location {
  std::string topic;
  uint32_t queue = 0;
  uint64_t offset = 0;
  bool operator==(const Location&) const = default;
};

struct RetryRecord {
  // The message as the group knows it (receipts and subscriptions use it).
  std::string topic;
  uint32_t queue = 0;
  uint64_t offset = 0;
  uint32_t delivery_count = 0;  // deliveries so far
  uint32_t max_reconsume = 0;   // the consumer's limit; 0 = broker default
  // Where the bytes are read from when not at topic/queue/offset: a dead
  // letter sent back to its group is read from the dead-letter queue.
  std::optional<Location> source;
};
std::string EncodeRetry(const RetryRecord& r);
bool DecodeRetry(std::string_view value, RetryRecord* out);

// Where a message id was first stored (the dedup window's answer).
struct DedupRecord {
  int64_t stored_ms = 0;
  std::string topic;
  uint32_t queue = 0;
  bool has_offset = false;
  uint64_t offset = 0;
};

}  // namespace txmq::storage
