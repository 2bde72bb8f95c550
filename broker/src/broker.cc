// Broker facade. Start() runs recovery and binding on the caller's thread,
// then starts thread "txmq-core" (Server::Run), which owns all broker state
// until Stop() joins it.
#include "txmq/broker.h"

#include <condition_variable>
#include <mutex>
#include <thread>

#include "broker/src/auth/security.h"
#include "broker/src/limits.h"
#include "broker/src/server.h"
#include "protocol/src/broker_list.h"
#include "protocol/src/byte_size.h"
#include "protocol/src/codec.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq {

std::vector<std::chrono::milliseconds> DefaultRetryBackoff() {
  using std::chrono::hours, std::chrono::minutes, std::chrono::seconds;
  return {seconds(1), seconds(5),  seconds(10), seconds(30), minutes(1), minutes(2),
          minutes(3), minutes(4),  minutes(5),  minutes(6),  minutes(7), minutes(8),
          minutes(9), minutes(10), minutes(20), minutes(30), hours(1),   hours(2)};
}

Status ValidateBrokerOptions(const BrokerOptions& o) {
  auto bad = [](const std::string& field, const std::string& value, const std::string& rule) {
    return Status::InvalidArgument(field + " = " + value + ": " + rule);
  };
  if (o.name.empty()) return bad("name", "''", "must not be empty");
  if (const std::string why = net::EndpointProblem(o.listen, /*bind=*/true); !why.empty()) {
    return bad("listen", "'" + o.listen + "'",
               why + "; it must be a ZeroMQ endpoint like tcp://127.0.0.1:7800");
  }
  if (o.data_dir.empty()) return bad("data_dir", "''", "must name a directory");
  if (o.default_queues < 1 || o.default_queues > 1024) {
    return bad("default_queues", std::to_string(o.default_queues), "must be 1-1024");
  }
  if (o.max_message_bytes < 1024 || o.max_message_bytes > 64u * 1024 * 1024) {
    return bad("max_message_bytes", std::to_string(o.max_message_bytes),
               "must be between 1 KiB and 64 MiB");
  }
  auto positive = [&](const char* field, std::chrono::milliseconds d) {
    return d.count() > 0 ? Status::OK()
                         : bad(field, std::to_string(d.count()) + "ms", "must be positive");
  };
  for (auto [field, value] : {std::pair{"dedup_window", o.dedup_window},
                              {"retention", o.retention},
                              {"default_visibility_timeout", o.default_visibility_timeout},
                              {"client_timeout", o.client_timeout},
                              {"max_long_poll", o.max_long_poll},
                              {"cleanup_interval", o.cleanup_interval},
                              {"transaction_timeout", o.transaction_timeout},
                              {"check_interval", o.check_interval},
                              {"check_interval_max", o.check_interval_max},
                              {"check_timeout", o.check_timeout},
                              {"resolved_retention", o.resolved_retention}}) {
    if (Status s = positive(field, value); !s.ok()) return s;
  }
  if (o.max_reconsume_times < 1 || o.max_reconsume_times > 1000) {
    return bad("max_reconsume_times", std::to_string(o.max_reconsume_times), "must be 1-1000");
  }
  if (o.retry_backoff.empty()) return bad("retry_backoff", "[]", "needs at least one delay");
  for (auto d : o.retry_backoff) {
    if (d.count() < 0)
      return bad("retry_backoff", std::to_string(d.count()) + "ms", "must not be negative");
  }
  if (o.max_pull_messages < 1) return bad("max_pull_messages", "0", "must be at least 1");
  if (o.cleanup_batch < 1) return bad("cleanup_batch", "0", "must be at least 1");
  constexpr size_t kMiB = 1024 * 1024;
  if (o.write_buffer_bytes < kMiB) {
    return bad("write_buffer_bytes", std::to_string(o.write_buffer_bytes),
               "must be at least 1 MiB");
  }
  if (o.table_file_bytes < kMiB) {
    return bad("table_file_bytes", std::to_string(o.table_file_bytes), "must be at least 1 MiB");
  }
  if (o.segment_bytes < 4ull * o.max_message_bytes + kMiB || o.segment_bytes > (1ull << 40)) {
    return bad("segment_bytes", std::to_string(o.segment_bytes),
               "must be at least 4 x max_message_bytes + 1 MiB (" +
                   std::to_string(4ull * o.max_message_bytes + kMiB) + ") and at most 1 TiB");
  }
  if (o.curve_secret_key_file.empty() != o.acl_file.empty()) {
    return bad(o.acl_file.empty() ? "acl_file" : "curve_secret_key_file", "''",
               "CURVE needs both the broker's secret key and the ACL (txmqd --curve-secret-key "
               "and --acl): with no ACL nobody could connect, with no key nobody is known");
  }
  if (o.curve_secret_key_file.empty() && !o.insecure &&
      !broker::auth::IsLoopbackEndpoint(o.listen)) {
    return bad("listen", o.listen,
               "is reachable from other machines, and without CURVE anyone who reaches it could "
               "send, consume and act as an operator. Turn CURVE on (txmqd --curve-secret-key "
               "FILE --acl FILE), listen on 127.0.0.1, or accept plaintext with --insecure");
  }
  if (o.min_free_disk_bytes && *o.min_free_disk_bytes != 0 &&
      *o.min_free_disk_bytes < MinFreeDiskRoom(o)) {
    return bad("min_free_disk_bytes (--min-free-disk)", FormatBytes(*o.min_free_disk_bytes),
               "must be 0 (off) or at least " + FormatBytes(MinFreeDiskRoom(o)) +
                   ", the room the broker may still need while it refuses new messages (2 x "
                   "segment + 4 x write buffer + 25 x table file; see txmqd --help)");
  }
  if (o.check_max < 1) return bad("check_max", "0", "must be at least 1");
  if (o.checks_per_second < 1) return bad("checks_per_second", "0", "must be at least 1");
  if (o.check_interval_max < o.check_interval) {
    return bad(
        "check_interval_max", std::to_string(o.check_interval_max.count()) + "ms",
        "must not be below check_interval (" + std::to_string(o.check_interval.count()) + "ms)");
  }
  return broker::ValidateLimitOptions(o);
}

uint64_t MinFreeDiskRoom(const BrokerOptions& o) {
  return 2 * o.segment_bytes + 4 * uint64_t{o.write_buffer_bytes} +
         25 * uint64_t{o.table_file_bytes};
}

uint64_t EffectiveMinFreeDisk(const BrokerOptions& o) {
  return o.min_free_disk_bytes ? *o.min_free_disk_bytes : MinFreeDiskRoom(o);
}

class Broker::Impl {
 public:
  explicit Impl(const BrokerOptions& options) : options_(options) {}

  Status Start() {
    server_ = std::make_unique<broker::Server>(options_, time_, &mailbox_, &operators_);
    if (Status s = server_->Init(); !s.ok()) return s;
    Logger("broker")->info("broker '{}' serving on {} (data {}, flush {})", options_.name,
                           server_->endpoint(), options_.data_dir,
                           options_.flush == FlushMode::kSync ? "sync" : "async");
    thread_ = std::thread([this] {
      SetThreadName("txmq-core");
      server_->Run();
      std::lock_guard<std::mutex> lock(mu_);
      exit_status_ = server_->exit_status();
      finished_ = true;
      cv_.notify_all();
    });
    return Status::OK();
  }

  void Stop() {
    std::lock_guard<std::mutex> stop_lock(stop_mu_);
    if (!server_) return;
    server_->RequestStop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    Logger("broker")->info("broker '{}' stopped", options_.name);
  }

  Status ReloadAcl() {
    std::lock_guard<std::mutex> stop_lock(stop_mu_);
    if (!server_) return Status::Unavailable("the broker is stopped");
    return server_->ReloadAcl();
  }

  Status Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return finished_; });
    return exit_status_;
  }

  Result<std::shared_ptr<const broker::MetricsSnapshot>> Metrics(
      std::chrono::milliseconds timeout) {
    // The mailbox outlives the server: no lock needed, and a request
    // after Stop() is told the broker stopped.
    return mailbox_.Request(timeout);
  }

  Result<std::string> Operate(std::string request, std::string peer,
                              std::chrono::milliseconds timeout) {
    // The id, to match the reply; the core decodes the frame again, with
    // its own limits, as it would a frame from the network.
    uint64_t request_id = 0;
    try {
      auto frame = wire::DecodeFrame(zmq::message_t(request.data(), request.size()), {});
      if (!frame.ok()) return frame.status();
      request_id = frame->envelope().getRequestId();
    } catch (const kj::Exception& e) {
      return Status::InvalidArgument(std::string("malformed request: ") +
                                     e.getDescription().cStr());
    }
    // Like the metrics mailbox, this one outlives the server.
    return operators_.Call({request_id, std::move(peer), std::move(request)}, timeout);
  }

  const std::string& endpoint() const { return endpoint_cache_; }
  void CacheEndpoint() { endpoint_cache_ = server_->endpoint(); }
  const BrokerOptions& options() const { return options_; }

 private:
  BrokerOptions options_;
  broker::SystemTimeSource time_;
  broker::SnapshotMailbox mailbox_;    // before server_, which answers it
  broker::OperatorMailbox operators_;  // likewise
  std::unique_ptr<broker::Server> server_;
  std::thread thread_;
  std::string endpoint_cache_;
  std::mutex stop_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false;  // guarded by mu_
  Status exit_status_;     // guarded by mu_
};

Result<std::unique_ptr<Broker>> Broker::Start(const BrokerOptions& given) {
  BrokerOptions options = given;
  options.listen = net::WithTcpScheme(options.listen);  // HOST:PORT, as every client takes it
  if (Status s = ValidateBrokerOptions(options); !s.ok()) return s;
  auto impl = std::make_unique<Impl>(options);
  if (Status s = impl->Start(); !s.ok()) return s;
  impl->CacheEndpoint();
  return std::unique_ptr<Broker>(new Broker(std::move(impl)));
}

Result<std::string> Broker::Operate(std::string request, std::string peer,
                                    std::chrono::milliseconds timeout) const {
  return impl_->Operate(std::move(request), std::move(peer), timeout);
}

Broker::Broker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Broker::~Broker() { Stop(); }
const std::string& Broker::endpoint() const { return impl_->endpoint(); }
const BrokerOptions& Broker::options() const { return impl_->options(); }
void Broker::Stop() { impl_->Stop(); }
Status Broker::Wait() { return impl_->Wait(); }
Status Broker::ReloadAcl() { return impl_->ReloadAcl(); }
Result<std::shared_ptr<const broker::MetricsSnapshot>> Broker::Metrics(
    std::chrono::milliseconds timeout) const {
  return impl_->Metrics(timeout);
}

}  // namespace txmq
