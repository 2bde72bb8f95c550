#include "txmq/producer.h"

#include <atomic>
#include <mutex>

#include "producer/src/call_gate.h"
#include "producer/src/group_router.h"
#include "producer/src/library_send.h"
#include "producer/src/send_path.h"
#include "protocol/src/connection.h"
#include "txmq/names.h"
#include "txmq/properties.h"
#include "txmq/version.h"

namespace txmq {

class Producer::Impl {
 public:
  explicit Impl(const ProducerOptions& options) : options_(options) {}

  Status Start() {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == State::kRunning) return Status::FailedPrecondition("producer already started");
    if (state_ == State::kShutDown) {
      return Status::FailedPrecondition("producer was shut down; make a new one");
    }
    if (Status s = ValidateName("producer group", options_.group); !s.ok()) return s;
    if (options_.send_timeout.count() <= 0) {
      return Status::InvalidArgument("send_timeout must be positive (got " +
                                     std::to_string(options_.send_timeout.count()) + " ms)");
    }
    if (options_.retries < 0) {
      return Status::InvalidArgument("retries must not be negative (got " +
                                     std::to_string(options_.retries) + ")");
    }
    auto keys =
        curve::LoadClientKeys(options_.curve_key, options_.server_key, "curve_key", "server_key");
    if (!keys.ok()) return keys.status();
    net::ConnectionOptions connection_options{.broker = options_.broker,
                                              .client_id = options_.client_id,
                                              .role = wire::Role::PRODUCER,
                                              .group = options_.group,
                                              .software = std::string("txmq-producer ") + kVersion,
                                              .curve = *keys};
    auto connection = net::Connection::Open(connection_options);
    if (!connection.ok()) return connection.status();
    connection_ = std::move(connection.value());
    router_ = std::make_shared<producer::GroupRouter>(*connection_, connection_options,
                                                      options_.send_timeout);
    client_id_ = connection_->client_id();
    state_ = State::kRunning;
    gate_.Open();
    return Status::OK();
  }

  void Shutdown() {
    std::lock_guard<std::mutex> one_at_a_time(shutdown_mu_);  // a second caller waits too
    {
      std::lock_guard<std::mutex> lock(mu_);
      const bool running = state_ == State::kRunning;
      state_ = State::kShutDown;
      if (!running) return;
    }
    // Calls inside the gate only hand their send to the I/O thread: short.
    gate_.Close();
    gate_.WaitIdle();
    shut_down_->store(true);
    if (router_) router_->Shut();  // a completion still holding it reroutes nothing
    router_.reset();               // group connections first: they route through home
    connection_.reset();           // sends in flight complete now, with UNAVAILABLE
  }

  // `stamped`: the library set the message's reserved properties.
  void SendAsync(Message message, SendCallback callback, bool stamped) {
    producer::CallGate::Pass pass(gate_);
    if (!pass) return callback(NotRunning());
    if (!stamped) {
      if (Status s = property::CheckUserProperties(message.properties); !s.ok()) {
        return callback(s);
      }
    }
    if (Status s = producer::PrepareMessage(message, *connection_); !s.ok()) return callback(s);
    const std::string id = message.id;
    producer::SendRouted(
        router_, options_, std::make_shared<const Message>(std::move(message)),
        [callback = std::move(callback), shut_down = shut_down_, id](Result<SendResult> r) {
          if (!r.ok() && shut_down->load() && r.status().code() == StatusCode::kUnavailable) {
            return callback(Status::Unavailable(
                "producer shut down before message " + id +
                " was acknowledged; it may have been stored: resend it with the same id "
                "(the broker stores it once)"));
          }
          callback(std::move(r));
        });
  }

  const std::string& client_id() const { return client_id_; }

 private:
  enum class State { kNew, kRunning, kShutDown };

  Status NotRunning() {
    std::lock_guard<std::mutex> lock(mu_);
    return state_ == State::kShutDown ? Status::FailedPrecondition("producer is shut down")
                                      : Status::FailedPrecondition("producer is not started");
  }

  const ProducerOptions options_;
  std::mutex shutdown_mu_;
  std::mutex mu_;
  State state_ = State::kNew;  // guarded by mu_
  // Calls pass it while they use connection_, which Start sets and
  // Shutdown frees once the gate is closed and empty.
  producer::CallGate gate_;
  std::unique_ptr<net::Connection> connection_;
  // Routes sends across a cluster's broker groups; set with connection_.
  std::shared_ptr<producer::GroupRouter> router_;
  std::string client_id_;  // set by Start, then constant
  // Read by completions: a call that fails because the producer shut down
  // says so.
  std::shared_ptr<std::atomic<bool>> shut_down_ = std::make_shared<std::atomic<bool>>(false);
};

Producer::Producer(ProducerOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>(options_)) {}

Producer::~Producer() { Shutdown(); }

Status Producer::Start() { return impl_->Start(); }

void Producer::Shutdown() { impl_->Shutdown(); }

const std::string& Producer::client_id() const { return impl_->client_id(); }

void Producer::SendAsync(Message message, SendCallback callback) {
  impl_->SendAsync(std::move(message), std::move(callback), /*stamped=*/false);
}

void producer::SendStamped(Producer& producer, Message message, SendCallback callback) {
  producer.impl().SendAsync(std::move(message), std::move(callback), /*stamped=*/true);
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
