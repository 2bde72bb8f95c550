#include "txmq/producer.h"

#include <mutex>

#include "producer/src/send_path.h"
#include "protocol/src/connection.h"
#include "txmq/names.h"
#include "txmq/version.h"

namespace txmq {

class Producer::Impl {
 public:
  std::unique_ptr<net::Connection> connection;
};

Producer::Producer(ProducerOptions options) : options_(std::move(options)) {}

Producer::~Producer() { Shutdown(); }

Status Producer::Start() {
  if (impl_) return Status::FailedPrecondition("producer already started");
  if (Status s = ValidateName("producer group", options_.group); !s.ok()) return s;
  if (options_.send_timeout.count() <= 0) {
    return Status::InvalidArgument("send_timeout must be positive (got " +
                                   std::to_string(options_.send_timeout.count()) + " ms)");
  }
  if (options_.retries < 0) {
    return Status::InvalidArgument("retries must not be negative (got " +
                                   std::to_string(options_.retries) + ")");
  }
  auto connection = net::Connection::Open({.broker = options_.broker,
                                           .client_id = options_.client_id,
                                           .role = wire::Role::PRODUCER,
                                           .group = options_.group,
                                           .software = std::string("txmq-producer ") + kVersion});
  if (!connection.ok()) return connection.status();
  impl_ = std::make_unique<Impl>();
  impl_->connection = std::move(connection.value());
  return Status::OK();
}

void Producer::Shutdown() { impl_.reset(); }

const std::string& Producer::client_id() const {
  static const std::string kNone;
  return impl_ ? impl_->connection->client_id() : kNone;
}

void Producer::SendAsync(Message message, SendCallback callback) {
  if (!impl_) return callback(Status::FailedPrecondition("producer is not started"));
  if (Status s = producer::PrepareMessage(message, *impl_->connection); !s.ok()) {
    return callback(s);
  }
  producer::SendWithRetries(*impl_->connection, options_,
                            std::make_shared<const Message>(std::move(message)),
                            std::move(callback));
}

std::future<Result<SendResult>> Producer::SendAsync(Message message) {
  auto promise = std::make_shared<std::promise<Result<SendResult>>>();
  auto future = promise->get_future();
  SendAsync(std::move(message),
            [promise](Result<SendResult> r) { promise->set_value(std::move(r)); });
  return future;
}

Result<SendResult> Producer::Send(Message message) { return SendAsync(std::move(message)).get(); }

}  // namespace txmq
