// Copying a stored message (storage::MessageView) onto the wire.
#pragma once

#include "protocol/txmq.capnp.h"
#include "storage/src/records.h"

namespace txmq::broker {

void FillWireMessage(const storage::MessageView& m, uint64_t delay_ms, wire::Message::Builder out);

}  // namespace txmq::broker
