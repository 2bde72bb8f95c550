// The part of sending that Producer and TransactionProducer share: local
// checks, and resending an idempotent request until it is answered.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "protocol/src/connection.h"
#include "txmq/message.h"
#include "txmq/producer.h"

namespace txmq::producer {

// Fills in a missing id; refuses what the broker would refuse anyway
// (name, size, compensation address) without a round trip. Reserved
// properties are not checked here: the library stamps them before; the
// public entry points check what the user set (property::CheckUserProperties).
Status PrepareMessage(Message& message, const net::Connection& connection);

// The size rule for a transaction: its messages' counted bytes together
// within the broker's limit, and at most wire::kMaxMessagesPerRequest.
Status CheckTotalSize(const std::vector<Message>& messages, const net::Connection& connection);

// Sends the request `fill` builds; on TIMEOUT or UNAVAILABLE builds and
// sends it again, up to `retries` more times. Only for requests the broker
// treats as idempotent (a send with the same message id, a half with the
// same transaction id, an end). `done` runs once, on the I/O thread.
using FillFn = std::function<void(wire::Envelope::Builder)>;
void CallWithRetries(net::Connection& connection, FillFn fill, std::chrono::milliseconds timeout,
                     int retries, net::ReplyFn done);
// The same, waiting for the answer. Never call it from a completion.
Result<wire::Frame> CallWithRetriesSync(net::Connection& connection, FillFn fill,
                                        std::chrono::milliseconds timeout, int retries);

// Sends `message` (prepared) and calls `done` once, on the I/O thread.
void SendWithRetries(net::Connection& connection, const ProducerOptions& options,
                     std::shared_ptr<const Message> message, SendCallback done);

}  // namespace txmq::producer
