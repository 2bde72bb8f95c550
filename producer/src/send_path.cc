#include "producer/src/send_path.h"

#include <future>

#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "txmq/names.h"

namespace txmq::producer {

Status PrepareMessage(Message& message, const net::Connection& connection) {
  Status name = ValidateSendTopic(message.topic);
  if (!name.ok()) return name;
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
        if (reply.status().IsRetryable() && attempt->attempts_left-- > 0) {
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
