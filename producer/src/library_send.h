// Entry points for messages the libraries make themselves (the outbox
// relay's rows, the inbox's compensations). They carry reserved properties
// (txmq/properties.h) that a user may not set, so unlike the public calls
// they do not refuse them.
#pragma once

#include "txmq/local_store.h"
#include "txmq/message.h"
#include "txmq/outbox.h"
#include "txmq/producer.h"

namespace txmq::producer {

// Producer::SendAsync for a message whose reserved properties the library
// set.
void SendStamped(Producer& producer, Message message, SendCallback callback);

// Outbox::Add for a message whose reserved properties the library set.
Status AddStamped(Outbox& outbox, LocalTxn& txn, Message message);

}  // namespace txmq::producer
