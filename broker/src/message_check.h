// Checks a message from the wire before it is stored, and turns it into the
// stored form. Every refusal names the bad value and the rule.
#pragma once

#include <string_view>

#include "protocol/src/codec.h"
#include "protocol/txmq.capnp.h"
#include "storage/src/records.h"
#include "txmq/broker.h"
#include "txmq/status.h"

namespace txmq::broker {

// The frame limit (wire::MaxFrameBytes) is computed from these.
inline constexpr size_t kMaxMessageIdBytes = wire::kMaxMessageIdBytes;
inline constexpr size_t kMaxKeyBytes = wire::kMaxKeyBytes;
inline constexpr size_t kMaxProperties = wire::kMaxUserProperties;
inline constexpr size_t kMaxPropertyNameBytes = wire::kMaxPropertyNameBytes;

Status CheckMessageId(std::string_view id);

// Fills `out` with views into `in` (valid while the request frame lives),
// and `counted_bytes` (if not null) with what the message counts against
// max_message_bytes (body + key + non-reserved properties). A message above
// the limit alone is TOO_LARGE here; the caller adds up a transaction's.
// `allow_system_topic` lets the broker's own paths write to '%' topics and
// any reserved property.
Status CheckMessage(wire::Message::Reader in, const BrokerOptions& options, bool allow_system_topic,
                    storage::MessageView* out, size_t* counted_bytes = nullptr);

}  // namespace txmq::broker
