// The compensation message a consumer sends back when its business step
// failed: addressed to the original's txmq.compensate-to topic, or to its
// producer group's "%COMP%<group>", carrying the original's id, topic,
// transaction id, the failing group and the reason. Used by the LevelDB
// and the PostgreSQL inbox.
#pragma once

#include <string>

#include "txmq/message.h"
#include "txmq/status.h"

namespace txmq::consumer {

// FAILED_PRECONDITION when `m` names neither a producer group nor a
// compensation topic.
Result<Message> MakeCompensation(const Received& m, const std::string& group,
                                 const std::string& reason);

}  // namespace txmq::consumer
