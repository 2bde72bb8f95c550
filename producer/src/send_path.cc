#include "producer/src/send_path.h"

#include <future>

#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "txmq/names.h"
#include "txmq/properties.h"

namespace txmq::producer {

namespace {

// The broker's limit for one request's counted bytes.
size_t MessageLimit(const net::Connection& connection) {
  const uint32_t announced = connection.broker_max_message_bytes();
  return announced != 0 ? announced : wire::kDefaultMaxMessageBytes;
}

}  // namespace

Status PrepareMessage(Message& message, const net::Connection& connection) {
  Status name = ValidateSendTopic(message.topic);
  if (!name.ok()) return name;
  if (message.id.empty()) message.id = NewUuidV7();
  const size_t limit = MessageLimit(connection);
  const size_t size = property::CountedBytes(message);
  if (size > limit) {
    return Status::TooLarge("message of " + std::to_string(size) +
                            " bytes (body + key + properties not starting with 'txmq.') is above "
                            "the broker's limit of " +
                            std::to_string(limit) + " bytes");
  }
  size_t reserved = 0;
  for (const auto& [k, v] : message.properties) {
    if (property::IsReserved(k)) reserved += k.size() + v.size();
  }
  if (reserved > property::kMaxReservedBytes) {
    return Status::TooLarge("the message's reserved ('txmq.') properties take " +
                            std::to_string(reserved) + " bytes; at most " +
                            std::to_string(property::kMaxReservedBytes) + " are allowed");
  }
  if (const std::string* to = property::Find(message.properties, property::kCompensateTo)) {
    if (Status s = ValidateSendTopic(*to); !s.ok()) {
      return Status::InvalidArgument(std::string("property ") + property::kCompensateTo + ": " +
                                     s.message());
    }
  }
  if (message.delay.count() < 0) {
    return Status::InvalidArgument("delay of " + std::to_string(message.delay.count()) +
                                   " ms is negative");
  }
  return Status::OK();
}

Status CheckTotalSize(const std::vector<Message>& messages, const net::Connection& connection) {
  if (messages.size() > wire::kMaxMessagesPerRequest) {
    return Status::InvalidArgument("a transaction carries 1-" +
                                   std::to_string(wire::kMaxMessagesPerRequest) +
                                   " messages (got " + std::to_string(messages.size()) + ")");
  }
  size_t total = 0;
  for (const Message& m : messages) total += property::CountedBytes(m);
  const size_t limit = MessageLimit(connection);
  if (total > limit) {
    return Status::TooLarge("the transaction's " + std::to_string(messages.size()) +
                            " messages take " + std::to_string(total) +
                            " bytes together (body + key + properties not starting with "
                            "'txmq.'); the broker's limit for one request is " +
                            std::to_string(limit) + " bytes");
  }
  return Status::OK();
}

namespace {

struct Attempt {
  net::Connection* connection;
  FillFn fill;
  std::chrono::milliseconds timeout;
  int attempts_left;
  net::ReplyFn done;
  Status first_failure{};  // what went wrong first, often the real cause
};

void Try(std::shared_ptr<Attempt> attempt) {
  auto request = attempt->connection->NewRequest();
  attempt->fill(request.envelope());
  attempt->connection->Call(
      std::move(request), attempt->timeout, [attempt](Result<wire::Frame> reply) mutable {
        if (reply.ok()) return attempt->done(std::move(reply));
        // RESOURCE_EXHAUSTED (disk low, a count limit reached) will not
        // change within microseconds: an immediate retry only adds to the
        // refusals. The caller (or the outbox relay, with its backoff)
        // tries again later.
        const bool retry_now =
            reply.status().IsRetryable() && reply.status().code() != StatusCode::kResourceExhausted;
        if (retry_now && attempt->attempts_left-- > 0) {
          if (attempt->first_failure.ok()) attempt->first_failure = reply.status();
          return Try(std::move(attempt));
        }
        // Retries used up: the last error says where things stand now, the
        // first one why (say, "message not stored: IO error" before the
        // broker became unreachable).
        const Status& first = attempt->first_failure;
        if (!first.ok() && first.message() != reply.status().message()) {
          return attempt->done(
              Status(reply.status().code(),
                     reply.status().message() + " (first attempt: " + first.ToString() + ")"));
        }
        attempt->done(std::move(reply));
      });
}

}  // namespace

void CallWithRetries(net::Connection& connection, FillFn fill, std::chrono::milliseconds timeout,
                     int retries, net::ReplyFn done) {
  Try(std::make_shared<Attempt>(
      Attempt{&connection, std::move(fill), timeout, retries, std::move(done)}));
}

Result<wire::Frame> CallWithRetriesSync(net::Connection& connection, FillFn fill,
                                        std::chrono::milliseconds timeout, int retries) {
  std::promise<Result<wire::Frame>> promise;
  auto future = promise.get_future();
  CallWithRetries(connection, std::move(fill), timeout, retries,
                  [&promise](Result<wire::Frame> r) { promise.set_value(std::move(r)); });
  return future.get();
}

void SendWithRetries(net::Connection& connection, const ProducerOptions& options,
                     std::shared_ptr<const Message> message, SendCallback done) {
  const int64_t born_ms = NowMs();
  CallWithRetries(
      connection,
      [message, born_ms](wire::Envelope::Builder env) {
        // The same message id every attempt: the broker stores it once.
        wire::MessageToWire(*message, born_ms, env.initSend().initMessage());
      },
      options.send_timeout, options.retries,
      [done = std::move(done)](Result<wire::Frame> reply) {
        if (!reply.ok()) return done(reply.status());
        done(wire::SendResultFromWire(reply->envelope().getSendOk()));
      });
}

}  // namespace txmq::producer
