// Validation of topic and group names.
//
// User names: [A-Za-z0-9_.-]{1,127}. Names starting with '%' belong to the
// broker ("%DLQ%<group>", "%RETRY%<group>", "%COMP%<group>"); users may read
// them but never send to them directly.
#pragma once

#include <string>
#include <string_view>

#include "txmq/status.h"

namespace txmq {

inline constexpr size_t kMaxNameLength = 127;

// OK, or INVALID_ARGUMENT naming the value and the rule. `what` is the kind
// of name for the message ("topic", "group").
Status ValidateName(std::string_view what, std::string_view name);

// Like ValidateName but also accepts the broker's own '%'-names.
Status ValidateNameOrSystem(std::string_view what, std::string_view name);

inline bool IsSystemName(std::string_view name) { return !name.empty() && name[0] == '%'; }

// "%DLQ%orders": the dead-letter topic of a consumer group.
std::string DeadLetterTopic(std::string_view group);

// "%COMP%orders": where a producer group receives compensations.
std::string CompensationTopic(std::string_view producer_group);

// A topic a client may send to: a user name, or a compensation topic (the
// only broker-owned names clients write).
Status ValidateSendTopic(std::string_view topic);

}  // namespace txmq
