#include <fcntl.h>
#include <unistd.h>

#include <thread>

#include "producer/src/pg/pg_library_add.h"
#include "producer/src/pg/pg_outbox_impl.h"
#include "producer/src/pg/pg_schema.h"
#include "protocol/src/util.h"
#include "txmq/names.h"
#include "txmq/properties.h"

namespace txmq::pg {

namespace {

std::string DefaultInstance() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + NewSecretHex(4);
}

}  // namespace

Outbox::Impl::Impl(OutboxOptions options)
    : options_(std::move(options)),
      instance_(options_.instance.empty() ? DefaultInstance() : options_.instance),
      log_(Logger("outbox")),
      rng_(std::random_device{}()) {}

Outbox::Impl::~Impl() { Shutdown(); }

Status Outbox::Impl::Start() {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_) return Status::FailedPrecondition("outbox already started");
  }
  const auto send_budget = options_.producer.send_timeout * (options_.producer.retries + 1);
  if (options_.lease <= send_budget) {
    return Status::InvalidArgument(
        "pg outbox options: lease (" + std::to_string(options_.lease.count()) +
        " ms) must exceed the producer's send_timeout times its attempts (" +
        std::to_string(send_budget.count()) + " ms), or rows would be claimed again mid-send");
  }
  if (options_.backoff_initial.count() <= 0 || options_.backoff_max < options_.backoff_initial ||
      options_.max_in_flight < 1 || options_.max_attempts < 0 ||
      options_.poll_interval.count() <= 0) {
    return Status::InvalidArgument(
        "pg outbox options: backoff_initial must be positive, backoff_max not below it, "
        "max_in_flight at least 1, max_attempts not negative, poll_interval positive");
  }
  auto relay_conn = OpenRelayConnection(options_.conninfo);
  if (!relay_conn.ok()) return relay_conn.status();
  if (Status s = MigrateOutbox(relay_conn->get()); !s.ok()) return s;
  auto admin_conn = Connection::Open(options_.conninfo);
  if (!admin_conn.ok()) return admin_conn.status();
  auto producer = std::make_unique<Producer>(options_.producer);
  if (Status s = producer->Start(); !s.ok()) return s;
  if (wake_pipe_[0] < 0 && pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return Status::Internal("pg outbox: cannot create its wake-up pipe");
  }
  producer_ = std::move(producer);
  relay_conn_ = std::move(*relay_conn);
  {
    std::lock_guard<std::mutex> admin(admin_mu_);
    admin_conn_ = std::move(*admin_conn);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    outcomes_.clear();
    in_flight_ = 0;
    running_ = true;
  }
  if (auto counts = CountRows(relay_conn_.get()); counts.ok()) {
    log_->info(
        "pg outbox relay {} on database '{}': {} rows pending ({} behind parked rows), {} "
        "parked",
        instance_, PQdb(relay_conn_.get()), counts->pending, counts->blocked, counts->parked);
  }
  relay_ = std::thread([this] {
    SetThreadName("txmq-pg-relay");
    Relay();
  });
  return Status::OK();
}

void Outbox::Impl::Shutdown() {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_) {
      if (wake_pipe_[0] >= 0) {
        close(wake_pipe_[0]);
        close(wake_pipe_[1]);
        wake_pipe_[0] = wake_pipe_[1] = -1;
      }
      return;
    }
    running_ = false;
  }
  Wake();
  relay_.join();
  // Sends in flight complete (UNAVAILABLE when not acknowledged yet); their
  // outcomes are written here, and the claims left are given back so
  // another relay takes the rows at once instead of after the lease.
  producer_.reset();
  if (EnsureConnected()) {
    ApplyOutcomes();
    if (Status s = ReleaseClaims(relay_conn_.get(), instance_); !s.ok()) {
      log_->warn(
          "pg outbox relay {}: could not give back its claims ({}); other relays take "
          "the rows when the lease ({} ms) runs out",
          instance_, s.ToString(), options_.lease.count());
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    outcomes_.clear();
    in_flight_ = 0;
  }
  log_->info("pg outbox relay {} stopped ({} rows sent)", instance_, sent_);
}

Status Outbox::Impl::Add(PGconn* conn, Message message) {
  if (Status s = ValidateSendTopic(message.topic); !s.ok()) return s;
  if (message.id.empty()) message.id = NewUuidV7();
  // Who sent it, so a consumer can address a compensation back.
  message.properties[property::kProducerGroup] = options_.producer.group;
  return InsertRow(conn, message, options_.notify_on_add);
}

Status Outbox::Impl::Flush(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    Counts counts;
    {
      std::lock_guard<std::mutex> admin(admin_mu_);
      if (admin_conn_.broken()) {
        auto c = Connection::Open(options_.conninfo);
        if (!c.ok()) return c.status();
        admin_conn_ = std::move(*c);
      }
      auto c = CountRows(admin_conn_.get());
      if (!c.ok()) return c.status();
      counts = *c;
    }
    if (counts.pending == 0) return Status::OK();
    if (counts.pending == counts.blocked && options_.hold_key_behind_parked) {
      return Status::FailedPrecondition(
          std::to_string(counts.pending) +
          " outbox rows wait behind parked rows of their keys: requeue or delete the parked rows");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::Timeout(std::to_string(counts.pending) + " outbox rows still pending after " +
                             FormatDurationMs(timeout.count()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

OutboxStats Outbox::Impl::stats() const {
  OutboxStats s;
  {
    std::lock_guard<std::mutex> admin(admin_mu_);
    if (!admin_conn_.broken()) {
      if (auto c = CountRows(admin_conn_.get()); c.ok()) {
        s.pending = c->pending;
        s.parked = c->parked;
        s.blocked = c->blocked;
        s.oldest_pending_age = c->oldest_pending_age;
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  s.sent = sent_;
  s.last_error = last_error_;
  return s;
}

Outbox::Outbox(OutboxOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Outbox::~Outbox() = default;
Status Outbox::Start() { return impl_->Start(); }
void Outbox::Shutdown() { impl_->Shutdown(); }
Status Outbox::Add(pg_conn* conn, Message message) {
  if (Status s = property::CheckUserProperties(message.properties); !s.ok()) return s;
  return impl_->Add(conn, std::move(message));
}

Status AddStamped(Outbox& outbox, PGconn* conn, Message message) {
  return outbox.impl().Add(conn, std::move(message));
}
Status Outbox::Flush(std::chrono::milliseconds timeout) { return impl_->Flush(timeout); }
OutboxStats Outbox::stats() const { return impl_->stats(); }
Status Outbox::Migrate(pg_conn* conn) { return MigrateOutbox(conn); }
Result<std::vector<OutboxRow>> Outbox::List(pg_conn* conn, bool parked) {
  return ListRows(conn, parked);
}
Status Outbox::Requeue(pg_conn* conn, const std::string& id, const std::string& operator_name) {
  return RequeueRow(conn, id, operator_name);
}
Status Outbox::Delete(pg_conn* conn, const std::string& id, const std::string& operator_name) {
  return DeleteRow(conn, id, true, operator_name);
}

}  // namespace txmq::pg
