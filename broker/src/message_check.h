// Checks a message from the wire before it is stored, and turns it into the
// stored form. Every refusal names the bad value and the rule.
#pragma once

#include <string_view>

#include "protocol/txmq.capnp.h"
#include "storage/src/records.h"
#include "txmq/broker.h"
#include "txmq/status.h"

namespace txmq::broker {

inline constexpr size_t kMaxMessageIdBytes = 128;
inline constexpr size_t kMaxKeyBytes = 4096;
inline constexpr size_t kMaxProperties = 128;
inline constexpr size_t kMaxPropertyNameBytes = 256;

Status CheckMessageId(std::string_view id);

// Fills `out` with views into `in` (valid while the request frame lives).
// `allow_system_topic` lets the broker's own paths write to '%' topics.
Status CheckMessage(wire::Message::Reader in, const BrokerOptions& options, bool allow_system_topic,
                    storage::MessageView* out);

}  // namespace txmq::broker
