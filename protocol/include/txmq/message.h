// The value types that travel between producers, the broker and consumers.
//
// Thread safety: plain values.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace txmq {

using Properties = std::map<std::string, std::string>;

// What a producer sends.
struct Message {
  // Topic name, [A-Za-z0-9_.-]{1,127}. Created on first send unless the broker
  // runs with auto-create off.
  std::string topic{};
  // Optional. Messages with the same key go to the same queue of the topic
  // and keep their order there; without a key, queues are used round robin.
  std::string key{};
  // Opaque payload. Body, key and the properties not starting with "txmq."
  // count against the broker's max_message_bytes (default 4 MiB); the
  // messages of one transaction count together (txmq/properties.h).
  std::string body{};
  // Optional application headers. Names starting with "txmq." are
  // reserved: see txmq/properties.h (the one a user may set is
  // txmq.compensate-to).
  Properties properties{};
  // Unique id. Left empty, the producer assigns a time-ordered UUIDv7. A
  // resend with the same id inside the broker's dedup window (default 10
  // min) is stored once and answered with the first result.
  std::string id{};
  // Deliver no earlier than this long after the broker stored the message.
  std::chrono::milliseconds delay{0};
};

// What the broker answered once the message is durable under its flush mode.
struct SendResult {
  std::string message_id{};
  std::string topic{};
  uint32_t queue = 0;
  // Position in the queue; empty for a delayed message, which gets its
  // offset when it becomes visible.
  std::optional<uint64_t> offset{};
  // True when the broker had already stored this id: nothing new was stored.
  bool duplicate = false;
};

// A message handed to a consumer.
struct Received {
  std::string id{};
  std::string topic{};
  std::string key{};
  std::string body{};
  Properties properties{};
  uint32_t queue = 0;
  uint64_t offset = 0;
  // 1 on first delivery; grows with each redelivery to the group.
  uint32_t delivery_count = 1;
  std::chrono::system_clock::time_point born_at{};    // when the producer made it
  std::chrono::system_clock::time_point stored_at{};  // when the broker stored it
  // Identifies this delivery to the broker (which lease an ack ends). Opaque.
  struct Lease {
    uint64_t retry_id = 0;
    uint64_t lease_id = 0;
  } lease;
};

}  // namespace txmq
