// The words txmqctl, the web console and the broker's messages use for
// the wire's transaction enums, in one place so they never drift apart.
//
// Thread safety: pure functions returning string literals.
#pragma once

#include "protocol/txmq.capnp.h"

namespace txmq::wire {

// "PREPARED", "COMMITTED", "ROLLED_BACK" (as in "already COMMITTED").
const char* TxStateName(TxState state);
// "none", "commit", "rollback", "unknown", "error", "no answer",
// "no producer".
const char* CheckAnswerName(CheckAnswer answer);

}  // namespace txmq::wire
