#include "producer/src/send_path.h"

#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "txmq/names.h"

namespace txmq::producer {

Status PrepareMessage(Message& message, const net::Connection& connection) {
  if (Status s = ValidateName("topic", message.topic); !s.ok()) return s;
  if (message.id.empty()) message.id = NewUuidV7();
  uint32_t limit = connection.broker_max_message_bytes();
  if (limit == 0) limit = static_cast<uint32_t>(wire::kDefaultMaxMessageBytes);
  const size_t size = wire::MessagePayloadBytes(message);
  if (size > limit) {
    return Status::TooLarge("message of " + std::to_string(size) +
                            " bytes (body + key + properties) is above the broker's limit of " +
                            std::to_string(limit) + " bytes");
  }
  if (message.delay.count() < 0) {
    return Status::InvalidArgument("delay of " + std::to_string(message.delay.count()) +
                                   " ms is negative");
  }
  return Status::OK();
}

namespace {

struct Attempt {
  net::Connection* connection;
  ProducerOptions options;
  std::shared_ptr<const Message> message;
  int64_t born_ms;
  int attempts_left;
  SendCallback done;
};

void Try(std::shared_ptr<Attempt> attempt) {
  auto request = attempt->connection->NewRequest();
  wire::MessageToWire(*attempt->message, attempt->born_ms,
                      request.envelope().initSend().initMessage());
  attempt->connection->Call(
      std::move(request), attempt->options.send_timeout,
      [attempt](Result<wire::Frame> reply) mutable {
        if (reply.ok()) {
          return attempt->done(wire::SendResultFromWire(reply->envelope().getSendOk()));
        }
        if (reply.status().IsRetryable() && attempt->attempts_left-- > 0) {
          return Try(std::move(attempt));  // same message id: stored once
        }
        attempt->done(reply.status());
      });
}

}  // namespace

void SendWithRetries(net::Connection& connection, const ProducerOptions& options,
                     std::shared_ptr<const Message> message, SendCallback done) {
  auto attempt = std::make_shared<Attempt>(
      Attempt{&connection, options, std::move(message), NowMs(), options.retries, std::move(done)});
  Try(std::move(attempt));
}

}  // namespace txmq::producer
