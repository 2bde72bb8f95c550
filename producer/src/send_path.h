// The part of sending that Producer and TransactionProducer share: local
// checks, encoding a send request, and resending with the same id.
#pragma once

#include <memory>
#include <string>

#include "protocol/src/connection.h"
#include "txmq/message.h"
#include "txmq/producer.h"

namespace txmq::producer {

// Fills in a missing id; refuses what the broker would refuse anyway
// (name, size) without a round trip.
Status PrepareMessage(Message& message, const net::Connection& connection);

// Sends `message` (prepared) and calls `done` once, on the I/O thread.
void SendWithRetries(net::Connection& connection, const ProducerOptions& options,
                     std::shared_ptr<const Message> message, SendCallback done);

}  // namespace txmq::producer
