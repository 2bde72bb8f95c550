// Message properties that belong to txmq: every name starting with "txmq."
// is reserved, and these are all of them.
//
//   msg.properties[txmq::property::kCompensateTo] = "payment-failures";
//   auto tx = txmq::property::Find(received.properties, txmq::property::kTransactionId);
//
// Users may set exactly one reserved name, kCompensateTo; the libraries
// stamp the others (producers, the inbox) or the broker does (dead
// letters), and a send that sets one itself is refused INVALID_ARGUMENT.
//
// Size: reserved properties do not count against the broker's
// max_message_bytes. What counts is CountedBytes(): body + key + the names
// and values of the other properties, summed over all messages of a
// transaction. Reserved properties are bounded on their own (at most
// kMaxReservedBytes per message), so a message that fits Send also fits a
// transaction.
//
// txmq 0.1 spelled the library-stamped names "txmq-tx",
// "txmq-producer-group", ... (a dash, not a dot, and not reserved). Find()
// still reads those in messages stored then, so an upgrade loses no
// compensation address.
//
// Thread safety: constants and pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "txmq/message.h"
#include "txmq/status.h"

namespace txmq::property {

inline constexpr std::string_view kReservedPrefix = "txmq.";

// --- set by users ---
// Topic a consumer's compensation for this message goes to, instead of the
// producer group's "%COMP%<group>". A topic name or a compensation topic.
inline constexpr char kCompensateTo[] = "txmq.compensate-to";

// --- stamped by the producer libraries ---
// The transaction a message was sent in (TransactionProducer).
inline constexpr char kTransactionId[] = "txmq.tx";
// The producer group that sent it (TransactionProducer, Outbox): where a
// compensation goes by default.
inline constexpr char kProducerGroup[] = "txmq.producer-group";

// --- stamped by the inbox on a compensation message ---
inline constexpr char kOriginalId[] = "txmq.original-id";        // the message that failed
inline constexpr char kOriginalTopic[] = "txmq.original-topic";  // its topic
inline constexpr char kConsumerGroup[] = "txmq.consumer-group";  // who could not process it
// Why, cut to kMaxReasonBytes (the compensation's body carries it whole).
inline constexpr char kReason[] = "txmq.reason";

// --- stamped by the broker on a dead letter ---
inline constexpr std::string_view kDeadLetterPrefix = "txmq.dlq.";
inline constexpr char kDeadLetterGroup[] = "txmq.dlq.group";    // the consumer group
inline constexpr char kDeadLetterTopic[] = "txmq.dlq.topic";    // where it was
inline constexpr char kDeadLetterQueue[] = "txmq.dlq.queue";    //   (queue,
inline constexpr char kDeadLetterOffset[] = "txmq.dlq.offset";  //    offset)
inline constexpr char kDeadLetterDeliveries[] = "txmq.dlq.deliveries";

// Names and values of the reserved properties one message may carry.
inline constexpr size_t kMaxReservedBytes = 8 * 1024;
inline constexpr size_t kMaxReasonBytes = 1024;

inline bool IsReserved(std::string_view name) { return name.starts_with(kReservedPrefix); }
// The reserved names a user may set (kCompensateTo).
bool IsUserSettable(std::string_view name);
// The reserved names a client may send: the user-settable ones and those
// the client libraries stamp. The broker refuses any other reserved name
// from a client.
bool IsClientStamped(std::string_view name);

// OK, or INVALID_ARGUMENT naming the first property a user may not set.
Status CheckUserProperties(const Properties& properties);

// What a message counts against the broker's max_message_bytes: body, key,
// and the names and values of its properties that are not reserved.
size_t CountedBytes(const Message& message);

// The value of reserved property `name`, also under its 0.1 spelling
// ("txmq-tx" for "txmq.tx"); nullptr if the message has neither.
const std::string* Find(const Properties& properties, std::string_view name);

}  // namespace txmq::property
